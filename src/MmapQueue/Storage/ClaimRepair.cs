using System.Buffers.Binary;
using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>
/// Recovery's two repairs of an unfinished frame past the strict (durable) region, so that a producer killed
/// (or preempted at the moment of a kill) in the middle of its append costs only its own record, never the
/// records later producers appended after it:
/// <list type="bullet">
/// <item>a claim whose claim CRC holds becomes an aborted record (<see cref="AbortClaim"/>);</item>
/// <item>a zero commit word followed by a frame that validates for the next sequence is a reservation whose
/// claim was never stored: the gap becomes an aborted record (<see cref="FindNextFrame"/>, <see cref="AbortGap"/>).</item>
/// </list>
/// Why, and the alternatives, in docs/DECISIONS.md ("Claim words").
/// </summary>
internal static class ClaimRepair
{
    /// <summary>
    /// Rewrites the claim at <paramref name="offset"/> (sequence <paramref name="sequence"/>, a claim CRC that
    /// holds) as an aborted record of the same length: it keeps its sequence, and readers skip it.
    /// </summary>
    public static void AbortClaim(Span<byte> segment, int offset, long sequence, int payloadLength) =>
        WriteAborted(segment, offset, sequence, payloadLength);

    /// <summary>Writes an aborted record for <paramref name="sequence"/> that covers [<paramref name="offset"/>, <paramref name="end"/>).</summary>
    public static void AbortGap(Span<byte> segment, int offset, int end, long sequence) =>
        WriteAborted(segment, offset, sequence, end - offset - SegmentLayout.RecordHeaderSize);

    private static void WriteAborted(Span<byte> segment, int offset, long sequence, int payloadLength)
    {
        uint word = SegmentLayout.AbortedWord(payloadLength);
        uint crc = SegmentLayout.RecordCrc(sequence, word, segment.Slice(offset + SegmentLayout.RecordHeaderSize, payloadLength));
        Frames.PublishHeader(segment, offset, word, crc);
    }

    /// <summary>
    /// After a zero commit word at <paramref name="offset"/>: the first 8-byte aligned offset y within one
    /// maximum frame (<paramref name="maxFrame"/> bytes) after it where a frame validates for
    /// <paramref name="nextSequence"/> (a record, aborted record or end marker by its CRC, a claim by its claim
    /// CRC), or -1. Cost: a vectorized scan for the first non-zero byte (an all-zero tail ends there), then
    /// zero words are skipped with one load each; candidate CRCs together hash at most two maximum frames, so
    /// hostile bytes cannot make an open quadratic. Runs only on an unclean open, past the watermark.
    /// </summary>
    public static int FindNextFrame(ReadOnlySpan<byte> segment, int offset, long nextSequence, int maxFrame)
    {
        long limit = Math.Min(segment.Length - SegmentLayout.RecordHeaderSize, (long)offset + maxFrame);
        int from = offset + SegmentLayout.RecordAlignment;
        if (from > limit) return -1;
        // The common unclean tail is zeros to the end: one vectorized scan says so, no frame-by-frame walk.
        int firstNonZero = segment.Slice(from, (int)(limit - from) + SegmentLayout.RecordHeaderSize).IndexOfAnyExcept((byte)0);
        if (firstNonZero < 0) return -1;
        long budget = 2L * maxFrame;
        for (long y = from + (firstNonZero & ~(SegmentLayout.RecordAlignment - 1)); y <= limit && budget >= 0; y += SegmentLayout.RecordAlignment)
        {
            int at = (int)y;
            uint word = BinaryPrimitives.ReadUInt32LittleEndian(segment[at..]);
            if (word == 0) continue;
            FrameKind kind = Frames.ClassifyWord(word, out int length);
            if (kind is FrameKind.Bad or FrameKind.Empty || y + SegmentLayout.FrameLength(length) > segment.Length) continue;
            if (kind == FrameKind.Claimed)
            {
                if (Frames.ClaimHolds(segment, at, word, nextSequence)) return at;
                continue;
            }
            budget -= length;
            if (budget >= 0 && Frames.Classify(segment, at, word, nextSequence, verifyCrc: true, out _, out _) == kind) return at;
        }
        return -1;
    }
}
