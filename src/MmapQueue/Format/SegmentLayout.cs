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
/// Header (little-endian), SegmentHeader below, pinned by a test:
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
///                        bit 31 PUBLISHED: set in every written word
///                        bit 30 END_OF_SEGMENT: no more records in this segment; readers go to the next
///                        bit 29 ABORTED: a claim whose writer threw; holds a sequence, carries no payload
///                        bits 0..28 payload length in bytes (0 for END_OF_SEGMENT)
///   4  u32  crc          CRC32C over (u64 sequence, u32 commit word, payload): a record copied to another
///                        position, or a word with a flipped length, fails the check
///   8  ...  payload      length bytes
///      ...  padding      zeros up to the next multiple of 8
///
/// The writer stores the crc and the payload, then publishes the commit word with one release store;
/// readers load the commit word with an acquire load and stop at the first zero word.
///
/// Index side file "&lt;base&gt;.idx" (a hint, never trusted: CursorsLayout/IndexLayout constants below).
/// Written (tmp, rename, no fsync) when a segment is sealed; rebuilt by a scan when missing or invalid.
///   0  u64  magic        "MMQIDX01"
///   8  u32  version      1
///  12  u32  entryCount
///  16  i64  baseSequence must match the segment
///  24  i64  recordCount  records in the segment (aborted ones included, the end marker not)
///  32  u32  endOffset    offset just past the last record (where the end marker, if any, sits)
///  36  u32  step         one entry for the first record at or after every multiple of step bytes
///  40  16B  queueId
///  56  u32  crc          CRC32C of bytes [0, 56) and of the entries
///  60  u32  reserved     0
///  64  entryCount x { u32 recordNumber (sequence - baseSequence), u32 offset }
/// A reader that lands on an entry checks that frame's CRC, which covers its sequence: a stale or wrong
/// entry fails it, and the index is rebuilt.
///
/// Cursors file "cursors": two slots of slotSize bytes (a multiple of 4096), at 0 and at slotSize; the
/// file is exactly 2 * slotSize long. As LMDB's two meta pages: generation g is written into slot g % 2
/// (in place, then fdatasync), so a torn write can only damage the slot that does not hold the newest
/// durable state; the reader takes the valid slot with the higher generation. Growing the slot rewrites
/// the whole file (tmp, fsync, rename, directory fsync).
///   0  u64  magic        "MMQCUR01"
///   8  u32  version      1
///  12  u32  slotSize
///  16  u64  generation   >= 1
///  24  16B  queueId
///  40  u32  count        named consumers in this slot
///  44  u32  bodyLength   bytes of entries
///  48  u32  crc          CRC32C of bytes [0, 48), of [52, 64) and of the body
///  52  u32  reserved     0
///  56  i64  retainedFrom retention floor: every segment that ends at or before it is deleted (or about
///                        to be); opening deletes such leftovers before recovery looks for gaps
///  64  body: count x { u8 nameLength, name (UTF-8), i64 committed sequence (the next one to read) }
/// </code>
/// </remarks>
internal static class SegmentLayout
{
    /// <summary>"MMQSEG01" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3130_4745_5351_4D4D;
    public const uint FormatVersion = 1;
    public const int HeaderSize = 64;
    public const int HeaderCrcCoveredBytes = 48;
    public const int DurableEndOffset = 56;
    public const int FirstRecordOffset = HeaderSize;

    public const int RecordHeaderSize = 8;
    public const int RecordCrcOffset = 4;
    public const int RecordAlignment = 8;

    public const uint PublishedFlag = 1u << 31;
    public const uint EndOfSegmentFlag = 1u << 30;
    public const uint AbortedFlag = 1u << 29;
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

    /// <summary>The record CRC: covers the sequence, the commit word and the payload.</summary>
    public static uint RecordCrc(long sequence, uint word, ReadOnlySpan<byte> payload)
    {
        uint crc = Crc32C.Append(Crc32C.Seed, (ulong)sequence);
        crc = Crc32C.Append(crc, word);
        return Crc32C.Finish(Crc32C.Append(crc, payload));
    }
}

/// <summary>The 64-byte segment header, exactly as drawn in <see cref="SegmentLayout"/>.</summary>
[StructLayout(LayoutKind.Explicit, Size = SegmentLayout.HeaderSize)]
internal struct SegmentHeader
{
    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public uint Version;
    [FieldOffset(12)] public uint HeaderSize;
    [FieldOffset(16)] public ulong SegmentSize;
    [FieldOffset(24)] public long BaseSequence;
    [FieldOffset(32)] public Guid QueueId;
    [FieldOffset(48)] public uint HeaderCrc;
    [FieldOffset(52)] public uint Reserved;
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

    public readonly uint ComputeCrc()
    {
        SegmentHeader copy = this;
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<SegmentHeader>(ref copy));
        return Crc32C.Compute(bytes[..SegmentLayout.HeaderCrcCoveredBytes]);
    }

    /// <summary>The durable watermark of a segment's header (outside the header CRC; it moves with each flush).</summary>
    public static long ReadDurableEnd(ReadOnlySpan<byte> file) =>
        (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(file[SegmentLayout.DurableEndOffset..]);

    public static SegmentHeader Read(ReadOnlySpan<byte> file) =>
        MemoryMarshal.Read<SegmentHeader>(file[..SegmentLayout.HeaderSize]);

    public readonly void Write(Span<byte> file)
    {
        SegmentHeader copy = this;
        MemoryMarshal.Write(file[..SegmentLayout.HeaderSize], in copy);
    }
}

/// <summary>Constants of the index side file drawn in <see cref="SegmentLayout"/>.</summary>
internal static class IndexLayout
{
    /// <summary>"MMQIDX01" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3130_5844_4951_4D4D;
    public const uint Version = 1;
    public const string Extension = ".idx";
    public const int HeaderSize = 64;
    public const int EntrySize = 8;
    public const int VersionOffset = 8, EntryCountOffset = 12, BaseSequenceOffset = 16, RecordCountOffset = 24;
    public const int EndOffsetOffset = 32, StepOffset = 36, QueueIdOffset = 40, CrcOffset = 56;

    /// <summary>Bytes between index entries: about 1024 entries per segment, at least a page apart.</summary>
    public static int StepFor(long segmentSize) => (int)Math.Max(SegmentLayout.PageSize, segmentSize / 1024);
}

/// <summary>Constants of the cursors file drawn in <see cref="SegmentLayout"/>.</summary>
internal static class CursorsLayout
{
    /// <summary>"MMQCUR01" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3130_5255_4351_4D4D;
    public const uint Version = 1;
    public const int HeaderSize = 64;
    public const int VersionOffset = 8, SlotSizeOffset = 12, GenerationOffset = 16, QueueIdOffset = 24;
    public const int CountOffset = 40, BodyLengthOffset = 44, CrcOffset = 48, RetainedFromOffset = 56;
    public const int MaxNameBytes = 255;
    public const int MinSlotSize = SegmentLayout.PageSize;
}
