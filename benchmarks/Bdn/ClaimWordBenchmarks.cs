using BenchmarkDotNet.Attributes;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// What the claim word adds to an append, without the queue around it (whose page faults and disk writes hide
/// a few nanoseconds on a loaded machine): 64 B frames written in turn over a 256 KiB buffer (in L2), as the
/// v1 writer published them (CRC store, then a 4-byte release store of the word), as the v2 writer does (one
/// 8-byte release store of word and CRC), and v2 with the claim stored first (claim CRC and an 8-byte store).
/// </summary>
[MemoryDiagnoser]
public class ClaimWordBenchmarks
{
    private const int Payload = 64, Frames = 4096;
    private static readonly int FrameBytes = SegmentLayout.FrameLength(Payload);
    private readonly byte[] _segment = new byte[Frames * SegmentLayout.FrameLength(Payload)];
    private readonly byte[] _payload = new byte[Payload];

    [GlobalSetup]
    public void Setup() => new Random(1).NextBytes(_payload);

    [Benchmark(Baseline = true, OperationsPerInvoke = Frames)]
    public void PublishV1()
    {
        Span<byte> seg = _segment;
        uint word = SegmentLayout.RecordWord(Payload);
        for (int i = 0, off = 0; i < Frames; i++, off += FrameBytes)
        {
            _payload.CopyTo(seg.Slice(off + SegmentLayout.RecordHeaderSize, Payload));
            MmapQueues.Format.Frames.WriteCrc(seg, off, i, word, Payload);
            MmapQueues.Format.Frames.PublishCommitWord(seg, off, word);
        }
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public void PublishHeaderOnly()
    {
        Span<byte> seg = _segment;
        uint word = SegmentLayout.RecordWord(Payload);
        for (int i = 0, off = 0; i < Frames; i++, off += FrameBytes)
        {
            _payload.CopyTo(seg.Slice(off + SegmentLayout.RecordHeaderSize, Payload));
            MmapQueues.Format.Frames.PublishHeader(seg, off, word, SegmentLayout.RecordCrc(i, word, seg.Slice(off + SegmentLayout.RecordHeaderSize, Payload)));
        }
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public void ClaimThenPublish()
    {
        Span<byte> seg = _segment;
        uint word = SegmentLayout.RecordWord(Payload);
        for (int i = 0, off = 0; i < Frames; i++, off += FrameBytes)
        {
            MmapQueues.Format.Frames.StoreClaim(seg, off, i, Payload);
            _payload.CopyTo(seg.Slice(off + SegmentLayout.RecordHeaderSize, Payload));
            MmapQueues.Format.Frames.PublishHeader(seg, off, word, SegmentLayout.RecordCrc(i, word, seg.Slice(off + SegmentLayout.RecordHeaderSize, Payload)));
        }
    }
}
