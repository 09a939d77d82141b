using BenchmarkDotNet.Attributes;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>Zero-copy TryRead and TryReadBatch with their CRC32C checks, warm page cache: ns per record.</summary>
[MemoryDiagnoser]
public class ReadBenchmarks
{
    private const int Records = 262_144;
    private ScratchQueue _scratch = null!;
    private MmapQueue _queue = null!;

    [Params(64, 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _scratch = new ScratchQueue($"read-{PayloadSize}", new MmapQueueOptions { FlushMode = FlushMode.Async });
        _queue = _scratch.Queue;
        var payload = new byte[PayloadSize];
        new Random(1).NextBytes(payload);
        for (int i = 0; i < Records; i++) _queue.Enqueue(payload);
    }

    [Benchmark(OperationsPerInvoke = Records)]
    public long TryRead()
    {
        long sum = 0;
        using QueueReader reader = _queue.OpenReader();
        while (reader.TryRead(out ReadOnlySpan<byte> payload)) sum += payload.Length;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Records)]
    public long TryReadBatch()
    {
        long sum = 0;
        using QueueReader reader = _queue.OpenReader();
        while (reader.TryReadBatch(out RecordBatch batch))
            foreach (RecordView record in batch) sum += record.Payload.Length;
        return sum;
    }

    [GlobalCleanup]
    public void Cleanup() => _scratch.Dispose();
}
