using System.IO.Hashing;
using BenchmarkDotNet.Attributes;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// The hand-written CRC32C (SSE4.2, one chain below 3 KiB, three interleaved chains above) against
/// System.IO.Hashing's CRC-32C parameter set, at a small record, a typical one and a large one. The record
/// CRC in the queue runs over one payload at a time, so these sizes are the ones the library sees.
/// On a loaded machine the minimum is the steadiest figure (load only ever adds time), so it is shown too.
/// </summary>
[MemoryDiagnoser, MinColumn]
public class Crc32CBenchmarks
{
    // 256 KiB of random bytes (L2-resident) cut into Size-byte slices: each invocation checks 64 slices in a row, as a
    // reader checks consecutive records, so BenchmarkDotNet's per-call overhead is not most of a 64 B figure.
    private const int Buffer = 256 * 1024, PerInvoke = 64;
    private byte[] _data = null!;

    [Params(64, 1024, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Buffer];
        new Random(3).NextBytes(_data);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = PerInvoke)]
    public uint HandWritten()
    {
        uint x = 0;
        for (int i = 0, at = 0; i < PerInvoke; i++, at = (at + Size) % Buffer)
            x ^= Crc32C.Compute(_data.AsSpan(at, Size));
        return x;
    }

    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public uint SystemIOHashing()
    {
        uint x = 0;
        for (int i = 0, at = 0; i < PerInvoke; i++, at = (at + Size) % Buffer)
            x ^= Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, _data.AsSpan(at, Size));
        return x;
    }
}
