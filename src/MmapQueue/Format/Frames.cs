using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
    /// <summary>A claim in progress: a producer reserved this frame (its length is final) and has not published it yet.</summary>
    Claimed,
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
    /// <remarks>
    /// Walks use <see cref="FrameCursor"/>, which calls this; only <c>QueueReader.TryRead</c> (measured faster
    /// stepping by hand) and the receiver (its commit word is held back, not yet in the mapping) call it directly.
    /// </remarks>
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
        FrameKind kind = ClassifyWord(word, out payloadLength);
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
        // A claim's CRC is not checked here: only recovery, which rewrites the claim, needs it (ClaimHolds).
        if ((verifyCrc && kind != FrameKind.Claimed) || kind == FrameKind.EndOfSegment)
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

    /// <summary>
    /// What a commit word alone says: <see cref="FrameKind.Empty"/> (zero), a record, an aborted claim, a claim in
    /// progress, the end marker, or <see cref="FrameKind.Bad"/> (flags MmapQueue never writes). The only place the
    /// flags are tested. The frame is <see cref="SegmentLayout.FrameLength"/>(<paramref name="payloadLength"/>)
    /// bytes long for every kind but Empty and Bad (the end marker has length 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FrameKind ClassifyWord(uint word, out int payloadLength)
    {
        payloadLength = PayloadLength(word);
        uint flags = word & ~SegmentLayout.LengthMask;
        if (flags == SegmentLayout.PublishedFlag) return FrameKind.Payload; // the common case first: one compare on the read path
        if (flags == (SegmentLayout.PublishedFlag | SegmentLayout.AbortedFlag)) return FrameKind.Aborted;
        if (flags == SegmentLayout.ClaimedFlags) return FrameKind.Claimed;
        if (word == SegmentLayout.EndOfSegmentWord) return FrameKind.EndOfSegment; // END_OF_SEGMENT carries length 0
        return word == 0 ? FrameKind.Empty : FrameKind.Bad;
    }

    /// <summary>The payload length a commit word carries, for a word <see cref="ClassifyWord"/> already classified.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int PayloadLength(uint word) => (int)(word & SegmentLayout.LengthMask);

    /// <summary>
    /// Acquire-loads the commit word at <paramref name="offset"/> (stored little-endian); pairs with the release
    /// store of <see cref="PublishCommitWord"/>, so every byte of a frame whose word it sees is final.
    /// </summary>
    /// <remarks>The caller has checked that the frame header lies inside <paramref name="segment"/>.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint LoadCommitWord(ReadOnlySpan<byte> segment, int offset)
    {
        Debug.Assert((uint)offset <= (uint)(segment.Length - sizeof(uint)), $"commit word at {offset} outside {segment.Length} bytes");
        uint word = Volatile.Read(ref Unsafe.As<byte, uint>(ref Unsafe.Add(ref MemoryMarshal.GetReference(segment), offset)));
        return BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word);
    }

    /// <summary>
    /// Release-stores the commit word at <paramref name="offset"/> (little-endian), after the CRC and payload:
    /// a <see cref="LoadCommitWord"/> that sees the word also sees every byte stored before it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PublishCommitWord(Span<byte> segment, int offset, uint word)
    {
        Debug.Assert((uint)offset <= (uint)(segment.Length - sizeof(uint)), $"commit word at {offset} outside {segment.Length} bytes");
        Volatile.Write(ref Unsafe.As<byte, uint>(ref Unsafe.Add(ref MemoryMarshal.GetReference(segment), offset)),
            BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word));
    }

    /// <summary>
    /// Stores the claim right after a reservation won: the commit word CLAIMED|length and the claim CRC, in one
    /// 8-byte store (the header is 8-byte aligned). A plain store: readers treat a claim as they treat a zero
    /// word (not yet), so nothing needs to be ordered before it; the publish that overwrites it is the release.
    /// A process kill keeps it (the page cache holds every store made), so recovery finds the frame's length.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreClaim(Span<byte> segment, int offset, long sequence, int payloadLength)
    {
        uint word = SegmentLayout.ClaimedWord(payloadLength);
        Unsafe.WriteUnaligned(ref HeaderRef(segment, offset), HeaderValue(word, SegmentLayout.ClaimCrc(sequence, word)));
    }

    /// <summary>
    /// Publishes a frame whose payload is in place: release-stores its commit word and CRC as one 8-byte store
    /// (over the claim). A <see cref="LoadCommitWord"/> that sees the word (the low half, little-endian) also sees
    /// every byte stored before it; x64 and arm64 make an aligned 8-byte store single-copy atomic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PublishHeader(Span<byte> segment, int offset, uint word, uint crc) =>
        Volatile.Write(ref Unsafe.As<byte, ulong>(ref HeaderRef(segment, offset)), HeaderValue(word, crc));

    /// <summary>True when the frame at <paramref name="offset"/> holds a claim for <paramref name="sequence"/> whose claim CRC holds.</summary>
    public static bool ClaimHolds(ReadOnlySpan<byte> segment, int offset, uint word, long sequence) =>
        BinaryPrimitives.ReadUInt32LittleEndian(segment[(offset + SegmentLayout.RecordCrcOffset)..]) == SegmentLayout.ClaimCrc(sequence, word);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref byte HeaderRef(Span<byte> segment, int offset)
    {
        Debug.Assert((uint)offset <= (uint)(segment.Length - SegmentLayout.RecordHeaderSize) && offset % SegmentLayout.RecordAlignment == 0,
            $"frame header at {offset} outside {segment.Length} bytes or unaligned");
        return ref Unsafe.Add(ref MemoryMarshal.GetReference(segment), offset);
    }

    /// <summary>The 8 header bytes (commit word, then CRC, each little-endian) as one u64 in host order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong HeaderValue(uint word, uint crc)
    {
        ulong v = word | ((ulong)crc << 32);
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    /// <summary>
    /// Where a sealed segment ends according to its header's durable watermark, when the watermark proves it:
    /// the segment size (filled exactly, or a marker in its last 8 bytes), or just past an end marker whose
    /// CRC names <paramref name="nextSequence"/>. Null when it does not; the caller then walks the frames.
    /// <paramref name="read"/> reads the frame header before the watermark (the only bytes looked at).
    /// </summary>
    public static int? SealedEnd(long durableEnd, long segmentSize, long nextSequence, ReadBytesAt read)
    {
        long d = Math.Min(durableEnd, segmentSize);
        if (d == segmentSize) return (int)d;
        long markerAt = d - SegmentLayout.RecordHeaderSize;
        if (markerAt < SegmentLayout.FirstRecordOffset || d % SegmentLayout.RecordAlignment != 0) return null;
        Span<byte> frame = stackalloc byte[SegmentLayout.RecordHeaderSize];
        if (!read(markerAt, frame)) return null;
        uint word = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(frame[SegmentLayout.RecordCrcOffset..]);
        return word == SegmentLayout.EndOfSegmentWord && crc == SegmentLayout.RecordCrc(nextSequence, word, default) ? (int)d : null;
    }

    /// <summary>
    /// Why the frame at <paramref name="offset"/> is <see cref="FrameKind.Bad"/> (null if it is not): classified
    /// again, with its CRC. Static and out of line, so a <see cref="FrameCursor"/> asked for it stays in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FrameProblem? Diagnose(ReadOnlySpan<byte> segment, int offset, long sequence)
    {
        uint word = offset + SegmentLayout.RecordHeaderSize <= segment.Length ? LoadCommitWord(segment, offset) : 0;
        Classify(segment, offset, word, sequence, verifyCrc: true, out _, out FrameProblem? problem);
        return problem;
    }

    // The messages are built out of line: inlined into the reader's hot path, the string-interpolation
    // locals cost a zeroed 256-byte stack frame on every TryRead (see benchmarks/RESULTS.md, case 5).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static FrameProblem BadFlags(uint word) =>
        new("a commit word with flags PUBLISHED[|ABORTED|END_OF_SEGMENT], or CLAIMED", $"0x{word:X8}");

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

/// <summary>Fills <paramref name="into"/> with the bytes at <paramref name="offset"/>; false if they are not there.</summary>
internal delegate bool ReadBytesAt(long offset, Span<byte> into);

/// <summary>What a frame check expected and what it found, for error messages.</summary>
internal readonly record struct FrameProblem(string Expected, string Found);
