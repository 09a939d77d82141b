using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// Claim-style append (the caller serializes straight into the mapping) against the span Enqueue of the
/// same bytes, async mode, one thread.
/// </summary>
[MemoryDiagnoser]
public class ClaimAppendBenchmarks
{
    private const int Ops = 16384;
    private ScratchQueue _scratch = null!;
    private MmapQueue _queue = null!;
    private byte[] _payload = Array.Empty<byte>();

    [Params(64, 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _scratch = new ScratchQueue($"claim-{PayloadSize}", new MmapQueueOptions { FlushMode = FlushMode.Async });
        _queue = _scratch.Queue;
        _payload = new byte[PayloadSize];
        new Random(1).NextBytes(_payload);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public void SpanEnqueue()
    {
        for (int i = 0; i < Ops; i++) _queue.Enqueue(_payload);
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public void ClaimCopy()
    {
        for (int i = 0; i < Ops; i++) _queue.Enqueue(_payload.Length, _payload, static (span, p) => p.CopyTo(span));
    }

    /// <summary>A serializer writing fields in place: no payload buffer exists at all.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void ClaimSerialize()
    {
        for (long i = 0; i < Ops; i++)
            _queue.Enqueue(PayloadSize, i, static (span, v) =>
            {
                for (int o = 0; o + 8 <= span.Length; o += 8) BinaryPrimitives.WriteInt64LittleEndian(span[o..], v + o);
            });
    }

    [GlobalCleanup]
    public void Cleanup() => _scratch.Dispose();
}
