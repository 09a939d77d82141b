using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace MmapQueues.Format;

/// <summary>
/// The on-disk format of a segment file. This comment is the only place the layout is drawn; every other
/// file uses the named constants below it.
/// </summary>
/// <remarks>
/// <code>
/// Segment file: SegmentSizeBytes long (a multiple of 4096), fully preallocated with fallocate.
///
///  offset 0                                                          64                          SegmentSizeBytes
///  +------------------------------------------------------------------+------------------- ... ------+
///  | header (64 B)                                                    | records, 8-byte aligned,      |
///  |                                                                  | then zeros (never written)    |
///  +------------------------------------------------------------------+------------------- ... ------+
///
/// Header (little-endian), SegmentHeader below; FormatLayoutTests pins its size, offsets and byte order:
///   0  u64  magic        "MMQSEG01" (0x3130_4745_5351_4D4D)
///   8  u32  version      FormatVersion (1)
///  12  u32  headerSize   64
///  16  u64  segmentSize  bytes of the whole file
///  24  i64  baseSequence sequence of the first record (also the file name, 20 digits)
///  32  16B  queueId      Guid of the queue (queue.meta); a segment from another queue is refused
///  48  u32  headerCrc    CRC32C of bytes [0, 48)
///  52  u32  reserved     0
///  56  u64  durableEnd   byte offset such that every record before it was durable when it was written;
///                        mutable, outside the CRC, lags one flush (see DurabilityWatermark in docs).
///
/// Record frame (at an 8-byte aligned offset >= 64):
///   0  u32  commit word  0 = nothing here yet (preallocated files read as zeros)
///                        bit 31 PUBLISHED: set in every published word
///                        bit 30 END_OF_SEGMENT (with 31): no more records in this segment; readers go to the next
///                        bit 30 alone (without 31) CLAIMED: a producer reserved this frame and is writing it;
///                               the length is final, the payload is not (ClaimedWord = 0x4000_0000 | length)
///                        bit 29 ABORTED (with 31): a claim whose writer threw, or that recovery found unfinished;
///                               holds a sequence, carries no payload
///                        bits 0..28 payload length in bytes (0 for END_OF_SEGMENT)
///   4  u32  crc          CRC32C over (u64 sequence, u32 commit word, payload): a record copied to another
///                        position, or a word with a flipped length, fails the check. For a CLAIMED word the
///                        payload is taken as empty (the claim CRC): a claim proves its sequence and length.
///   8  ...  payload      length bytes
///      ...  padding      zeros up to the next multiple of 8
///
/// A frame's life: the reservation (a CAS in memory) -> the claim: commit word CLAIMED|length and the claim CRC,
/// one 8-byte store -> the payload -> the publish: commit word PUBLISHED|length and the record CRC, one 8-byte
/// release store. The 8 header bytes are always stored together, so they are never half claim, half record.
/// Readers load the commit word with an acquire load and stop at the first zero or CLAIMED word (a claim is
/// "not yet, but this long": recovery can step over it, see Recovery.ScanAndRepair). v1 writers never stored a
/// CLAIMED word.
///
/// End-of-segment marker (where the next record did not fit; a frame with no payload):
///   0  u32  commit word  PUBLISHED | END_OF_SEGMENT = 0xC000_0000 (EndOfSegmentWord), length 0
///   4  u32  crc          CRC32C over (u64 base sequence of the next segment, u32 commit word)
/// A segment that leaves fewer than 8 bytes after its last record has no marker: its end is implicit.
/// FrameCursor is the one walker over these frames; Frames encodes and classifies them.
///
/// The other files of a queue directory are drawn in their own format files: IndexLayout.cs (".idx"),
/// CursorFile.cs ("cursors"), MetaLayout.cs ("queue.meta").
/// </code>
/// </remarks>
internal static class SegmentLayout
{
    /// <summary>"MMQSEG01" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3130_4745_5351_4D4D;
    public const uint FormatVersion = 1;
    public const int HeaderSize = 64;
    public const int MagicOffset = 0, VersionOffset = 8, HeaderSizeOffset = 12, SegmentSizeOffset = 16, BaseSequenceOffset = 24;
    public const int QueueIdOffset = 32, HeaderCrcOffset = 48, ReservedOffset = 52, DurableEndOffset = 56;
    public const int QueueIdSize = 16;
    /// <summary>The header CRC covers bytes [0, HeaderCrcOffset).</summary>
    public const int HeaderCrcCoveredBytes = HeaderCrcOffset;
    public const int FirstRecordOffset = HeaderSize;

    public const int RecordHeaderSize = 8;
    public const int RecordCrcOffset = 4;
    public const int RecordAlignment = 8;

    public const uint PublishedFlag = 1u << 31;
    public const uint EndOfSegmentFlag = 1u << 30;
    public const uint AbortedFlag = 1u << 29;
    /// <summary>The flags of a claim's commit word: END_OF_SEGMENT's bit without PUBLISHED.</summary>
    public const uint ClaimedFlags = EndOfSegmentFlag;
    public const uint LengthMask = (1u << 29) - 1;

    /// <summary>The largest payload a commit word can describe (512 MiB - 1).</summary>
    public const int MaxPayloadLength = (int)LengthMask;

    public const long MinSegmentSize = 4096;
    public const long MaxSegmentSize = 1L << 30;
    public const int PageSize = 4096;

    /// <summary>Bytes a record of <paramref name="payloadLength"/> occupies, header and padding included.</summary>
    public static int FrameLength(int payloadLength) =>
        (RecordHeaderSize + payloadLength + (RecordAlignment - 1)) & ~(RecordAlignment - 1);

    /// <summary>The largest payload that fits in an empty segment of the given size.</summary>
    public static int MaxPayloadFor(long segmentSize) =>
        (int)Math.Min(MaxPayloadLength, segmentSize - FirstRecordOffset - RecordHeaderSize);

    public static uint RecordWord(int payloadLength) => PublishedFlag | (uint)payloadLength;
    public static uint AbortedWord(int payloadLength) => PublishedFlag | AbortedFlag | (uint)payloadLength;
    public const uint EndOfSegmentWord = PublishedFlag | EndOfSegmentFlag;
    public static uint ClaimedWord(int payloadLength) => ClaimedFlags | (uint)payloadLength;

    /// <summary>The claim CRC: <see cref="RecordCrc"/> of the claim word with an empty payload.</summary>
    public static uint ClaimCrc(long sequence, uint claimWord) =>
        Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, (ulong)sequence), claimWord));

    /// <summary>The record CRC: covers the sequence, the commit word and the payload.</summary>
    public static uint RecordCrc(long sequence, uint word, ReadOnlySpan<byte> payload)
    {
        uint crc = Crc32C.Append(Crc32C.Seed, (ulong)sequence);
        crc = Crc32C.Append(crc, word);
        return Crc32C.Finish(Crc32C.Append(crc, payload));
    }
}

/// <summary>
/// The 64-byte segment header, exactly as drawn in <see cref="SegmentLayout"/>. The explicit layout mirrors the
/// file (a test checks the fields tile the header without overlap); the bytes are always read and written
/// little-endian through the named offsets, never by copying the struct, so the host's byte order does not matter.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = SegmentLayout.HeaderSize)]
internal struct SegmentHeader
{
    [FieldOffset(SegmentLayout.MagicOffset)] public ulong Magic;
    [FieldOffset(SegmentLayout.VersionOffset)] public uint Version;
    [FieldOffset(SegmentLayout.HeaderSizeOffset)] public uint HeaderSize;
    [FieldOffset(SegmentLayout.SegmentSizeOffset)] public ulong SegmentSize;
    [FieldOffset(SegmentLayout.BaseSequenceOffset)] public long BaseSequence;
    [FieldOffset(SegmentLayout.QueueIdOffset)] public Guid QueueId;
    [FieldOffset(SegmentLayout.HeaderCrcOffset)] public uint HeaderCrc;
    [FieldOffset(SegmentLayout.ReservedOffset)] public uint Reserved;
    [FieldOffset(SegmentLayout.DurableEndOffset)] public ulong DurableEnd;

    public static SegmentHeader Create(long segmentSize, long baseSequence, Guid queueId)
    {
        var h = new SegmentHeader
        {
            Magic = SegmentLayout.Magic,
            Version = SegmentLayout.FormatVersion,
            HeaderSize = SegmentLayout.HeaderSize,
            SegmentSize = (ulong)segmentSize,
            BaseSequence = baseSequence,
            QueueId = queueId,
            DurableEnd = SegmentLayout.FirstRecordOffset,
        };
        h.HeaderCrc = h.ComputeCrc();
        return h;
    }

    /// <summary>The CRC32C of the encoded bytes [0, <see cref="SegmentLayout.HeaderCrcCoveredBytes"/>).</summary>
    public readonly uint ComputeCrc()
    {
        Span<byte> bytes = stackalloc byte[SegmentLayout.HeaderSize];
        Write(bytes);
        return Crc32C.Compute(bytes[..SegmentLayout.HeaderCrcCoveredBytes]);
    }

    /// <summary>Decodes the first <see cref="SegmentLayout.HeaderSize"/> bytes of a segment file; <see cref="Check"/> validates.</summary>
    public static SegmentHeader Read(ReadOnlySpan<byte> file)
    {
        ReadOnlySpan<byte> b = file[..SegmentLayout.HeaderSize];
        return new SegmentHeader
        {
            Magic = BinaryPrimitives.ReadUInt64LittleEndian(b[SegmentLayout.MagicOffset..]),
            Version = BinaryPrimitives.ReadUInt32LittleEndian(b[SegmentLayout.VersionOffset..]),
            HeaderSize = BinaryPrimitives.ReadUInt32LittleEndian(b[SegmentLayout.HeaderSizeOffset..]),
            SegmentSize = BinaryPrimitives.ReadUInt64LittleEndian(b[SegmentLayout.SegmentSizeOffset..]),
            BaseSequence = BinaryPrimitives.ReadInt64LittleEndian(b[SegmentLayout.BaseSequenceOffset..]),
            QueueId = new Guid(b.Slice(SegmentLayout.QueueIdOffset, SegmentLayout.QueueIdSize)), // Guid's own little-endian byte layout
            HeaderCrc = BinaryPrimitives.ReadUInt32LittleEndian(b[SegmentLayout.HeaderCrcOffset..]),
            Reserved = BinaryPrimitives.ReadUInt32LittleEndian(b[SegmentLayout.ReservedOffset..]),
            DurableEnd = BinaryPrimitives.ReadUInt64LittleEndian(b[SegmentLayout.DurableEndOffset..]),
        };
    }

    /// <summary>Encodes the header into the first <see cref="SegmentLayout.HeaderSize"/> bytes of <paramref name="file"/>.</summary>
    public readonly void Write(Span<byte> file)
    {
        Span<byte> b = file[..SegmentLayout.HeaderSize];
        BinaryPrimitives.WriteUInt64LittleEndian(b[SegmentLayout.MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[SegmentLayout.VersionOffset..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(b[SegmentLayout.HeaderSizeOffset..], HeaderSize);
        BinaryPrimitives.WriteUInt64LittleEndian(b[SegmentLayout.SegmentSizeOffset..], SegmentSize);
        BinaryPrimitives.WriteInt64LittleEndian(b[SegmentLayout.BaseSequenceOffset..], BaseSequence);
        QueueId.TryWriteBytes(b.Slice(SegmentLayout.QueueIdOffset, SegmentLayout.QueueIdSize));
        BinaryPrimitives.WriteUInt32LittleEndian(b[SegmentLayout.HeaderCrcOffset..], HeaderCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(b[SegmentLayout.ReservedOffset..], Reserved);
        BinaryPrimitives.WriteUInt64LittleEndian(b[SegmentLayout.DurableEndOffset..], DurableEnd);
    }

    /// <summary>The durable watermark of a segment's header (outside the header CRC; it moves with each flush).</summary>
    public static long ReadDurableEnd(ReadOnlySpan<byte> file) =>
        (long)BinaryPrimitives.ReadUInt64LittleEndian(file[SegmentLayout.DurableEndOffset..]);

    /// <summary>Stores the durable watermark in a segment's header (a mapping: it reaches the disk with the next msync of the header page).</summary>
    public static void WriteDurableEnd(Span<byte> file, long offset) =>
        BinaryPrimitives.WriteUInt64LittleEndian(file[SegmentLayout.DurableEndOffset..], (ulong)offset);

    /// <summary>
    /// Checks the header of the segment that should start at <paramref name="expectedBase"/> in a queue of
    /// <paramref name="expectedSize"/>-byte segments with id <paramref name="queueId"/>: null when it is one
    /// MmapQueue wrote, else the first field that is not, with its offset.
    /// </summary>
    public readonly FieldProblem? Check(long expectedBase, long expectedSize, Guid queueId)
    {
        if (Magic != SegmentLayout.Magic)
            return new(SegmentLayout.MagicOffset, $"segment magic 0x{SegmentLayout.Magic:X16}", $"0x{Magic:X16}");
        if (Version != SegmentLayout.FormatVersion)
            return new(SegmentLayout.VersionOffset, $"format version {SegmentLayout.FormatVersion}", $"{Version}");
        uint crc = ComputeCrc();
        if (HeaderCrc != crc)
            return new(SegmentLayout.HeaderCrcOffset, $"header CRC32C 0x{crc:X8}", $"0x{HeaderCrc:X8}");
        if (HeaderSize != SegmentLayout.HeaderSize)
            return new(SegmentLayout.HeaderSizeOffset, $"header size {SegmentLayout.HeaderSize}", $"{HeaderSize}");
        if ((long)SegmentSize != expectedSize)
            return new(SegmentLayout.SegmentSizeOffset, $"segment size {expectedSize}", $"{SegmentSize}");
        if (BaseSequence != expectedBase)
            return new(SegmentLayout.BaseSequenceOffset, $"base sequence {expectedBase} (from the file name)", $"{BaseSequence}");
        if (QueueId != queueId)
            return new(SegmentLayout.QueueIdOffset, $"queue id {queueId} (from {MetaLayout.FileName})", $"{QueueId}");
        // The watermark lies outside the header CRC (it changes with every flush), so check it is one a writer
        // can have stored: a damaged one would move the line between a torn tail and corruption.
        if (DurableEnd < SegmentLayout.FirstRecordOffset || DurableEnd > (ulong)expectedSize || DurableEnd % SegmentLayout.RecordAlignment != 0)
            return new(SegmentLayout.DurableEndOffset,
                $"a durable watermark from {SegmentLayout.FirstRecordOffset} to {expectedSize}, a multiple of {SegmentLayout.RecordAlignment}", $"{DurableEnd}");
        return null;
    }
}

/// <summary>A field of a file that does not hold what MmapQueue writes: where, what was expected, what was found.</summary>
internal readonly record struct FieldProblem(int Offset, string Expected, string Found);
