using BenchmarkDotNet.Attributes;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// Time to open an existing queue (lock, meta, headers, tail recovery) after a clean Dispose; Dispose runs
/// in the iteration cleanup, so each iteration measures one open.
/// </summary>
[MemoryDiagnoser]
public class OpenBenchmarks
{
    private string _dir = "";
    private MmapQueue? _opened;

    /// <summary>64 B records already in the queue (500 000 fill about half of one 64 MiB segment; 2 000 000 span three).</summary>
    [Params(0, 500_000, 2_000_000)]
    public int Records { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Scratch.NewDirectory($"open-{Records}");
        using var q = new MmapQueue(_dir, new MmapQueueOptions { FlushMode = FlushMode.Async });
        var payload = new byte[64];
        for (int i = 0; i < Records; i++) q.Enqueue(payload);
    }

    [Benchmark]
    public long Open()
    {
        _opened = new MmapQueue(_dir, new MmapQueueOptions { FlushMode = FlushMode.Async });
        return _opened.NextSequence;
    }

    [IterationCleanup]
    public void CloseIteration()
    {
        _opened?.Dispose();
        _opened = null;
    }

    [GlobalCleanup]
    public void Cleanup() => Scratch.Delete(_dir);
}
