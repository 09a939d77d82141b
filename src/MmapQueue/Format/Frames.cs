using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MmapQueues.Format;

/// <summary>What lies at a record offset.</summary>
internal enum FrameKind
{
    /// <summary>A zero commit word: nothing published here (yet).</summary>
    Empty,
    /// <summary>A published record with a payload.</summary>
    Payload,
    /// <summary>A published record whose claim was abandoned: it holds a sequence and no payload.</summary>
    Aborted,
    /// <summary>The end-of-segment marker: the next record is at the start of the next segment.</summary>
    EndOfSegment,
    /// <summary>No room for even a frame header: the segment is full, the next record is in the next one.</summary>
    SegmentFull,
    /// <summary>Bytes MmapQueue cannot have written (bad flags, length past the end, CRC mismatch).</summary>
    Bad,
}

/// <summary>Decodes and encodes record frames (layout in <see cref="SegmentLayout"/>).</summary>
internal static class Frames
{
    /// <summary>
    /// Classifies the frame at <paramref name="offset"/> whose commit word the caller already loaded
    /// (with an acquire load when the segment is live). On <see cref="FrameKind.Bad"/>, <paramref name="problem"/>
    /// says what was expected and what was found.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FrameKind Classify(ReadOnlySpan<byte> segment, int offset, uint word, long sequence, bool verifyCrc,
        out int payloadLength, out FrameProblem? problem)
    {
        payloadLength = 0;
        problem = null;
        if (offset + SegmentLayout.RecordHeaderSize > segment.Length) return FrameKind.SegmentFull;
        if (word == 0) return FrameKind.Empty;
        return ClassifyPublished(segment, offset, word, sequence, verifyCrc, out payloadLength, out problem);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FrameKind ClassifyPublished(ReadOnlySpan<byte> segment, int offset, uint word, long sequence, bool verifyCrc,
        out int payloadLength, out FrameProblem? problem)
    {
        problem = null;
        payloadLength = (int)(word & SegmentLayout.LengthMask);
        uint flags = word & ~SegmentLayout.LengthMask;
        FrameKind kind = flags switch
        {
            SegmentLayout.PublishedFlag => FrameKind.Payload,
            SegmentLayout.PublishedFlag | SegmentLayout.AbortedFlag => FrameKind.Aborted,
            SegmentLayout.PublishedFlag | SegmentLayout.EndOfSegmentFlag when payloadLength == 0 => FrameKind.EndOfSegment,
            _ => FrameKind.Bad,
        };
        if (kind == FrameKind.Bad)
        {
            problem = BadFlags(word);
            return kind;
        }
        if ((long)offset + SegmentLayout.FrameLength(payloadLength) > segment.Length)
        {
            problem = PastEnd(segment.Length, payloadLength);
            return FrameKind.Bad;
        }
        if (verifyCrc || kind == FrameKind.EndOfSegment)
        {
            ReadOnlySpan<byte> payload = segment.Slice(offset + SegmentLayout.RecordHeaderSize, payloadLength);
            uint stored = BinaryPrimitives.ReadUInt32LittleEndian(segment[(offset + SegmentLayout.RecordCrcOffset)..]);
            uint actual = SegmentLayout.RecordCrc(sequence, word, payload);
            if (stored != actual)
            {
                problem = CrcMismatch(actual, sequence, payloadLength, stored);
                return FrameKind.Bad;
            }
        }
        return kind;
    }

    // The messages are built out of line: inlined into the reader's hot path, the string-interpolation
    // locals cost a zeroed 256-byte stack frame on every TryRead (see benchmarks/RESULTS.md, case 5).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static FrameProblem BadFlags(uint word) =>
        new("a commit word with flags PUBLISHED[|ABORTED|END_OF_SEGMENT]", $"0x{word:X8}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static FrameProblem PastEnd(int segmentLength, int payloadLength) =>
        new($"a record that ends inside the segment ({segmentLength} bytes)", $"length {payloadLength}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static FrameProblem CrcMismatch(uint actual, long sequence, int payloadLength, uint stored) =>
        new($"CRC32C 0x{actual:X8} for sequence {sequence} (length {payloadLength})", $"0x{stored:X8}");

    /// <summary>Writes the CRC of a record whose payload is already in place; the commit word is published separately.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteCrc(Span<byte> segment, int offset, long sequence, uint word, int payloadLength)
    {
        uint crc = SegmentLayout.RecordCrc(sequence, word, segment.Slice(offset + SegmentLayout.RecordHeaderSize, payloadLength));
        BinaryPrimitives.WriteUInt32LittleEndian(segment[(offset + SegmentLayout.RecordCrcOffset)..], crc);
    }
}

/// <summary>What a frame check expected and what it found, for error messages.</summary>
internal readonly record struct FrameProblem(string Expected, string Found);
