using BenchmarkDotNet.Attributes;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// Flush latency (Async mode): append <see cref="BytesBetweenFlushes"/> bytes of 64 B records, then
/// Flush (msync MS_SYNC of what they dirtied); and a Flush with nothing new to sync.
/// </summary>
[MemoryDiagnoser]
public class FlushBenchmarks
{
    private ScratchQueue _scratch = null!;
    private MmapQueue _queue = null!;
    private readonly byte[] _payload = new byte[64];
    private int _records;

    [Params(64, 4096, 1 << 20)]
    public int BytesBetweenFlushes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _scratch = new ScratchQueue($"flush-{BytesBetweenFlushes}", new MmapQueueOptions { FlushMode = FlushMode.Async });
        _queue = _scratch.Queue;
        _records = Math.Max(1, BytesBetweenFlushes / _payload.Length);
    }

    [Benchmark]
    public void AppendThenFlush()
    {
        for (int i = 0; i < _records; i++) _queue.Enqueue(_payload);
        _queue.Flush();
    }

    [Benchmark]
    public void FlushNothingNew() => _queue.Flush();

    [GlobalCleanup]
    public void Cleanup() => _scratch.Dispose();
}
