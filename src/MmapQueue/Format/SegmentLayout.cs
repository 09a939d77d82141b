using System.Buffers.Binary;
using System.Runtime.CompilerServices;
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
///  |                                                                  | then zeros in memory (*)      |
///  +------------------------------------------------------------------+------------------- ... ------+
///
/// (*) A fresh file is zeros on disk too (fallocated). A recycled one (RecycleSegments) is zeroed in memory
/// before it is used again, but its previous lap's frames may stay on disk past the records until writeback,
/// or until Dispose zeroes them (CLEAN_CLOSE below). After a power cut they cannot pass for records: a
/// record's CRC covers its sequence, and sequences only grow, so recovery's walk stops at the first one and
/// zeroes the rest.
///
/// Header (little-endian), SegmentHeader below; FormatLayoutTests pins its size, offsets and byte order.
/// Every segment's own version says how bytes 52..64 read, so one queue may hold both versions: version 1
/// segments are read as they are (never rewritten), and every segment created now is version 2.
///   0  u64  magic        "MMQSEG01" (0x3130_4745_5351_4D4D)
///   8  u32  version      1 or 2 (FormatVersion, written by this code)
///  12  u32  headerSize   64
///  16  u64  segmentSize  bytes of the whole file
///  24  i64  baseSequence sequence of the first record (also the file name, 20 digits)
///  32  16B  queueId      Guid of the queue (queue.meta); a segment from another queue is refused
///  48  u32  headerCrc    CRC32C of bytes [0, 48)
///  52  u32  state        v2, mutable, outside the CRC: 0, or CLEAN_CLOSE with its check:
///                          bit  0     CLEAN_CLOSE: the watermark is exact and every byte past durableEnd is
///                                     zero on disk. Set by Dispose after its last msync (only on a segment
///                                     whose unwritten rest is known zero on disk), cleared and msynced by open
///                                     before any append. Set, open trusts the watermark and walks nothing.
///                          bits 1..7  0
///                          bits 8..31 with CLEAN_CLOSE: the low 24 bits of CRC32C(the 8 watermark bytes), so a
///                                     damaged watermark is not trusted (stored with it, in the same msync)
///                        v1: reserved, 0.
///  56  u64  watermark    v2:  bits  0..31  durableEnd      byte offset such that every record before it was
///                                                          durable when it was written
///                             bits 32..63  durableRecords  records before durableEnd
///                             stored with ONE 8-byte store, so the pair is never torn; open walks the tail
///                             from (durableEnd, baseSequence + durableRecords) once the frame there confirms
///                             the pair (its CRC covers the sequence), else from offset 64.
///                        v1:  u64 durableEnd alone; open walks such a segment from offset 64.
///                        Mutable, outside the CRC, lags one flush (see the durable watermark in docs/DECISIONS.md).
///
/// Record frame (at an 8-byte aligned offset >= 64):
///   0  u32  commit word  0 = nothing here yet (a fresh, preallocated file reads as zeros; see (*))
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
    /// <summary>The version of every segment this code creates.</summary>
    public const uint FormatVersion = 2;
    /// <summary>The first version: read as it is (no state word; the watermark is durableEnd alone).</summary>
    public const uint FormatVersion1 = 1;
    public const int HeaderSize = 64;
    public const int MagicOffset = 0, VersionOffset = 8, HeaderSizeOffset = 12, SegmentSizeOffset = 16, BaseSequenceOffset = 24;
    public const int QueueIdOffset = 32, HeaderCrcOffset = 48, StateOffset = 52, WatermarkOffset = 56;
    /// <summary>Bit 0 of the v2 state word: see the drawing.</summary>
    public const uint CleanCloseFlag = 1;
    /// <summary>Where the v2 state word keeps the check of the watermark that goes with CLEAN_CLOSE (bits 8..31).</summary>
    public const int CleanCloseCheckShift = 8;
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
    [FieldOffset(SegmentLayout.StateOffset)] public uint State;
    [FieldOffset(SegmentLayout.WatermarkOffset)] public ulong Watermark;

    /// <summary>A new (version 2) header: watermark at the first record with 0 records, state 0.</summary>
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
            Watermark = PackWatermark(SegmentLayout.FirstRecordOffset, 0),
        };
        h.HeaderCrc = h.ComputeCrc();
        return h;
    }

    /// <summary>The v2 watermark word: durableEnd in bits 0..31, durableRecords in bits 32..63.</summary>
    public static ulong PackWatermark(long durableEnd, long durableRecords) => (uint)durableEnd | ((ulong)durableRecords << 32);

    /// <summary>The durable end offset the watermark carries, in this header's version.</summary>
    public readonly long DurableEnd => Version == SegmentLayout.FormatVersion1 ? (long)Watermark : (uint)Watermark;

    /// <summary>Records before <see cref="DurableEnd"/> (version 2); null for a version 1 header, which does not say.</summary>
    public readonly long? DurableRecords => Version == SegmentLayout.FormatVersion1 ? null : (long)(Watermark >> 32);

    /// <summary>True when the state word says the last close was clean (version 2 only; <see cref="Check"/> verified its check).</summary>
    public readonly bool CleanClose => Version != SegmentLayout.FormatVersion1 && (State & SegmentLayout.CleanCloseFlag) != 0;

    /// <summary>The v2 state word that says CLEAN_CLOSE for <paramref name="watermark"/>: the flag and a check of the watermark.</summary>
    public static uint CleanCloseState(ulong watermark)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, watermark);
        return SegmentLayout.CleanCloseFlag | (Crc32C.Compute(bytes) << SegmentLayout.CleanCloseCheckShift);
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
            State = BinaryPrimitives.ReadUInt32LittleEndian(b[SegmentLayout.StateOffset..]),
            Watermark = BinaryPrimitives.ReadUInt64LittleEndian(b[SegmentLayout.WatermarkOffset..]),
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
        BinaryPrimitives.WriteUInt32LittleEndian(b[SegmentLayout.StateOffset..], State);
        BinaryPrimitives.WriteUInt64LittleEndian(b[SegmentLayout.WatermarkOffset..], Watermark);
    }

    /// <summary>The durable end offset of a segment's header (outside the header CRC; it moves with each flush), in its version.</summary>
    public static long ReadDurableEnd(ReadOnlySpan<byte> file) => Read(file).DurableEnd;

    /// <summary>
    /// The durable watermark of a segment another process writes (a reader process's exporter reads it from the shared
    /// mapping): one aligned 8-byte load, so the v2 pair is never torn; decoded in the header's version (v1: no record
    /// count). Pairs with the plain store in <see cref="WriteWatermark"/>, which the flusher makes only after the msync
    /// of the records below the watermark returned: a watermark seen here never names a record that is not durable.
    /// </summary>
    public static (long DurableEnd, long? DurableRecords) ReadWatermarkShared(ReadOnlySpan<byte> file)
    {
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(file[SegmentLayout.VersionOffset..]);
        ulong word = Volatile.Read(ref Unsafe.As<byte, ulong>(ref MemoryMarshal.GetReference(file[SegmentLayout.WatermarkOffset..])));
        if (!BitConverter.IsLittleEndian) word = BinaryPrimitives.ReverseEndianness(word);
        return version == SegmentLayout.FormatVersion1 ? ((long)word, null) : ((uint)word, (long)(word >> 32));
    }

    /// <summary>
    /// Stores the durable watermark in a segment's header, in the header's own version (v2: end and record
    /// count packed, with one aligned 8-byte store: a reader of the file never sees half of the pair). A
    /// mapping: it reaches the disk with the next msync of the header page.
    /// </summary>
    public static void WriteWatermark(Span<byte> file, long durableEnd, long durableRecords)
    {
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(file[SegmentLayout.VersionOffset..]);
        ulong word = version == SegmentLayout.FormatVersion1 ? (ulong)durableEnd : PackWatermark(durableEnd, durableRecords);
        if (!BitConverter.IsLittleEndian) word = BinaryPrimitives.ReverseEndianness(word);
        // Plain aligned store: one 8-byte write. Open and tools read it from the file; a reader process's exporter
        // loads it from the shared mapping (ReadWatermarkShared, its partner).
        Unsafe.As<byte, ulong>(ref file[SegmentLayout.WatermarkOffset]) = word;
    }

    /// <summary>
    /// Sets (with the check of the watermark now in the header) or clears CLEAN_CLOSE in a v2 header's state
    /// word (a mapping: on disk with the next msync of the header page); a version 1 header has no state word
    /// and is left as it is.
    /// </summary>
    public static void WriteCleanClose(Span<byte> file, bool clean)
    {
        SegmentHeader h = Read(file);
        if (h.Version == SegmentLayout.FormatVersion1) return;
        BinaryPrimitives.WriteUInt32LittleEndian(file[SegmentLayout.StateOffset..], clean ? CleanCloseState(h.Watermark) : 0);
    }

    /// <summary>
    /// Checks the header of the segment that should start at <paramref name="expectedBase"/> in a queue of
    /// <paramref name="expectedSize"/>-byte segments with id <paramref name="queueId"/>: null when it is one
    /// MmapQueue wrote (version 1 or 2), else the first field that is not, with its offset.
    /// </summary>
    public readonly FieldProblem? Check(long expectedBase, long expectedSize, Guid queueId)
    {
        if (Magic != SegmentLayout.Magic)
            return new(SegmentLayout.MagicOffset, $"segment magic 0x{SegmentLayout.Magic:X16}", $"0x{Magic:X16}");
        if (Version is not (SegmentLayout.FormatVersion1 or SegmentLayout.FormatVersion))
            return new(SegmentLayout.VersionOffset, $"format version {SegmentLayout.FormatVersion1} or {SegmentLayout.FormatVersion}", $"{Version}");
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
        return Version == SegmentLayout.FormatVersion1 ? CheckWatermarkV1(expectedSize) : CheckMutableV2(expectedSize);
    }

    // The watermark lies outside the header CRC (it changes with every flush), so check it is one a writer can
    // have stored: a damaged one would move the line between a torn tail and corruption.
    private readonly FieldProblem? CheckWatermarkV1(long size) =>
        IsDurableEndPossible(Watermark, size) ? null
            : new(SegmentLayout.WatermarkOffset, $"a durable watermark from {SegmentLayout.FirstRecordOffset} to {size}, a multiple of {SegmentLayout.RecordAlignment}", $"{Watermark}");

    private readonly FieldProblem? CheckMutableV2(long size)
    {
        long end = DurableEnd, records = (long)(Watermark >> 32);
        // Every frame is at least RecordHeaderSize bytes: no more records than that fits before durableEnd.
        if (!IsDurableEndPossible((ulong)end, size) || records > (end - SegmentLayout.FirstRecordOffset) / SegmentLayout.RecordHeaderSize)
            return new(SegmentLayout.WatermarkOffset,
                $"a durable watermark with durableEnd from {SegmentLayout.FirstRecordOffset} to {size}, a multiple of {SegmentLayout.RecordAlignment}, " +
                $"and at most one record per {SegmentLayout.RecordHeaderSize} bytes before it",
                $"{Watermark} (durableEnd {end}, durableRecords {records})");
        // A possible watermark may still be a damaged one: CLEAN_CLOSE carries a check of it, and is trusted only with it.
        if (State != 0 && State != CleanCloseState(Watermark))
            return new(SegmentLayout.StateOffset, $"a state word 0, or CLEAN_CLOSE with the check of watermark {Watermark} " +
                                                  $"(0x{CleanCloseState(Watermark):X8}): the state or the watermark is damaged", $"0x{State:X8}");
        return null;
    }

    private static bool IsDurableEndPossible(ulong end, long size) =>
        end >= SegmentLayout.FirstRecordOffset && end <= (ulong)size && end % SegmentLayout.RecordAlignment == 0;
}

/// <summary>A field of a file that does not hold what MmapQueue writes: where, what was expected, what was found.</summary>
internal readonly record struct FieldProblem(int Offset, string Expected, string Found);
