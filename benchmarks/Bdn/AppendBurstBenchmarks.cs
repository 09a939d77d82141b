using BenchmarkDotNet.Attributes;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// The append path alone: a burst of 262 144 records into a fresh queue whose first segment (512 MiB, so
/// the burst never rolls) was preheated before the clock starts. <see cref="AppendBenchmarks"/> measures the
/// sustained rate instead, which the segment pipeline and the disk bound.
/// </summary>
[MemoryDiagnoser]
public class AppendBurstBenchmarks
{
    private const int Records = 262_144;
    private const long SegmentSize = 512L << 20;
    private string _dir = "";
    private MmapQueue? _queue;
    private byte[] _payload = Array.Empty<byte>();

    [Params(64, 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[PayloadSize];
        new Random(1).NextBytes(_payload);
    }

    [IterationSetup]
    public void OpenFresh()
    {
        _dir = Scratch.NewDirectory($"burst-{PayloadSize}");
        _queue = new MmapQueue(_dir, new MmapQueueOptions { FlushMode = FlushMode.Async, SegmentSizeBytes = SegmentSize });
        Thread.Sleep(600); // the allocator preheats the next spare in the background: keep it out of the timed burst
    }

    [Benchmark(OperationsPerInvoke = Records)]
    public void EnqueueBurst()
    {
        MmapQueue q = _queue!;
        for (int i = 0; i < Records; i++) q.Enqueue(_payload);
    }

    [IterationCleanup]
    public void Close()
    {
        try
        {
            _queue?.Dispose();
            _queue = null;
        }
        finally
        {
            Scratch.Delete(_dir);
        }
    }
}
