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
    /// After a zero commit word at <paramref name="offset"/>: where the next frame starts, if a frame that validates
    /// for <paramref name="nextSequence"/> (a record, aborted record or end marker by its CRC, a claim by its claim
    /// CRC) begins at the first non-zero 8-byte aligned header within one maximum frame (<paramref name="maxFrame"/>
    /// bytes), else -1. Only that one header is tried: a reservation whose claim was never stored holds nothing but
    /// zeros (the producer stopped before its first store), so the next frame's commit word is the first non-zero
    /// byte after it. Trying later offsets would let bytes inside a torn record's payload pass for a frame.
    /// Cost: one vectorized scan for the first non-zero byte and at most one CRC; only on an unclean open, past the
    /// watermark.
    /// </summary>
    public static int FindNextFrame(ReadOnlySpan<byte> segment, int offset, long nextSequence, int maxFrame)
    {
        long limit = Math.Min(segment.Length - SegmentLayout.RecordHeaderSize, (long)offset + maxFrame);
        int from = offset + SegmentLayout.RecordAlignment;
        if (from > limit) return -1;
        int firstNonZero = segment.Slice(from, (int)(limit - from) + SegmentLayout.RecordHeaderSize).IndexOfAnyExcept((byte)0);
        if (firstNonZero < 0) return -1; // the common unclean tail: zeros to the end
        int at = from + (firstNonZero & ~(SegmentLayout.RecordAlignment - 1));
        if (at > limit) return -1;
        uint word = BinaryPrimitives.ReadUInt32LittleEndian(segment[at..]);
        FrameKind kind = Frames.ClassifyWord(word, out int length);
        if (kind is FrameKind.Bad or FrameKind.Empty || (long)at + SegmentLayout.FrameLength(length) > segment.Length) return -1;
        if (kind == FrameKind.Claimed) return Frames.ClaimHolds(segment, at, word, nextSequence) ? at : -1;
        return Frames.Classify(segment, at, word, nextSequence, verifyCrc: true, out _, out _) == kind ? at : -1;
    }
}
