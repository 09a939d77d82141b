using BenchmarkDotNet.Attributes;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>Shared body of the append suites: one queue per parameter set, a pool of producer threads.</summary>
public abstract class AppendBenchmarkBase
{
    private ScratchQueue _scratch = null!;
    private MmapQueue _queue = null!;
    private ProducerPool _pool = null!;
    private byte[] _payload = Array.Empty<byte>();

    [Params(64, 1024, 16384)]
    public int PayloadSize { get; set; }

    [Params(1, 2, 4)]
    public int Threads { get; set; }

    protected abstract FlushMode Mode { get; }
    protected abstract int OpsPerInvoke { get; }

    [GlobalSetup]
    public void Setup()
    {
        _scratch = new ScratchQueue($"append-{Mode}-{PayloadSize}-{Threads}", new MmapQueueOptions { FlushMode = Mode });
        _queue = _scratch.Queue;
        _payload = new byte[PayloadSize];
        new Random(1).NextBytes(_payload);
        int perThread = OpsPerInvoke / Threads;
        _pool = new ProducerPool(Threads, _ =>
        {
            for (int i = 0; i < perThread; i++) _queue.Enqueue(_payload);
        });
    }

    protected void AppendBatch() => _pool.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        try
        {
            _pool.Dispose();
        }
        finally
        {
            _scratch.Dispose(); // GiB per benchmark: never leave it behind
        }
    }
}

/// <summary>Enqueue throughput in Async and Interval mode (ns per record; 16384 records per invocation across the threads).</summary>
[MemoryDiagnoser]
public class AppendBenchmarks : AppendBenchmarkBase
{
    private const int Ops = 16384;

    [Params(FlushMode.Async, FlushMode.Interval)]
    public FlushMode FlushMode { get; set; }

    protected override FlushMode Mode => FlushMode;
    protected override int OpsPerInvoke => Ops;

    [Benchmark(OperationsPerInvoke = Ops)]
    public void Enqueue() => AppendBatch();
}

/// <summary>Enqueue in Sync mode: every record durable on return; several threads share msyncs (group commit).</summary>
[MemoryDiagnoser]
public class SyncAppendBenchmarks : AppendBenchmarkBase
{
    private const int Ops = 64;

    protected override FlushMode Mode => FlushMode.Sync;
    protected override int OpsPerInvoke => Ops;

    [Benchmark(OperationsPerInvoke = Ops)]
    public void EnqueueSync() => AppendBatch();
}
