using System.Buffers.Binary;

namespace MmapQueues.Format;

/// <summary>
/// The index side file of a sealed segment: its byte layout, drawn here and nowhere else, and its codec.
/// </summary>
/// <remarks>
/// <code>
/// Index side file "&lt;base&gt;.idx" (a hint, never trusted), little-endian. Written (tmp, rename, no fsync)
/// when a segment is sealed; rebuilt by a scan when missing or invalid.
///   0  u64  magic        "MMQIDX01"
///   8  u32  version      1
///  12  u32  entryCount
///  16  i64  baseSequence must match the segment
///  24  i64  recordCount  records in the segment (aborted ones included, the end marker not)
///  32  u32  endOffset    offset just past the last record (where the end marker, if any, sits)
///  36  u32  step         one entry for the first record at or after every multiple of step bytes
///  40  16B  queueId
///  56  u32  crc          CRC32C of bytes [0, 56), of [60, 64) and of the entries
///  60  u32  reserved     0
///  64  entryCount x { u32 recordNumber (sequence - baseSequence), u32 offset }
/// </code>
/// A reader that lands on an entry checks that frame's CRC, which covers its sequence: a stale or wrong
/// entry fails it, and the index is rebuilt.
/// </remarks>
internal static class IndexLayout
{
    /// <summary>"MMQIDX01" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3130_5844_4951_4D4D;
    public const uint Version = 1;
    public const string Extension = ".idx";
    public const int HeaderSize = 64;
    public const int EntrySize = 8;
    public const int MagicOffset = 0, VersionOffset = 8, EntryCountOffset = 12, BaseSequenceOffset = 16, RecordCountOffset = 24;
    public const int EndOffsetOffset = 32, StepOffset = 36, QueueIdOffset = 40, CrcOffset = 56;
    public const int QueueIdSize = 16;
    public const int EntryRecordOffset = 0, EntryOffsetOffset = 4;

    /// <summary>Bytes between index entries: about 1024 entries per segment, at least a page apart.</summary>
    public static int StepFor(long segmentSize) => (int)Math.Max(SegmentLayout.PageSize, segmentSize / 1024);

    /// <summary>What an index file holds.</summary>
    public readonly record struct Contents(long BaseSequence, long RecordCount, int EndOffset, int Step, Guid QueueId,
        IReadOnlyList<(int Record, int Offset)> Entries);

    /// <summary>Bytes the file of <paramref name="entryCount"/> entries takes.</summary>
    public static int FileLength(int entryCount) => HeaderSize + entryCount * EntrySize;

    /// <summary>Encodes <paramref name="index"/> into <paramref name="file"/> (exactly <see cref="FileLength"/> bytes), CRC included.</summary>
    public static void Write(Span<byte> file, in Contents index)
    {
        file.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(file[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(file[VersionOffset..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(file[EntryCountOffset..], index.Entries.Count);
        BinaryPrimitives.WriteInt64LittleEndian(file[BaseSequenceOffset..], index.BaseSequence);
        BinaryPrimitives.WriteInt64LittleEndian(file[RecordCountOffset..], index.RecordCount);
        BinaryPrimitives.WriteInt32LittleEndian(file[EndOffsetOffset..], index.EndOffset);
        BinaryPrimitives.WriteInt32LittleEndian(file[StepOffset..], index.Step);
        index.QueueId.TryWriteBytes(file.Slice(QueueIdOffset, QueueIdSize));
        for (int i = 0; i < index.Entries.Count; i++)
        {
            Span<byte> e = file.Slice(HeaderSize + i * EntrySize, EntrySize);
            BinaryPrimitives.WriteInt32LittleEndian(e[EntryRecordOffset..], index.Entries[i].Record);
            BinaryPrimitives.WriteInt32LittleEndian(e[EntryOffsetOffset..], index.Entries[i].Offset);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(file[CrcOffset..], Crc(file));
    }

    /// <summary>
    /// Decodes an index file of the segment at <paramref name="baseSequence"/> (segments of
    /// <paramref name="segmentSize"/> bytes, queue <paramref name="queueId"/>). False, with what is wrong in
    /// <paramref name="problem"/>, when the file does not check out: bad CRC, another segment or queue,
    /// entries out of order or range.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> file, long baseSequence, long segmentSize, Guid queueId, out Contents index, out string problem)
    {
        index = default;
        problem = Check(file, baseSequence, segmentSize, queueId);
        if (problem.Length > 0) return false;
        int count = BinaryPrimitives.ReadInt32LittleEndian(file[EntryCountOffset..]);
        var entries = new List<(int, int)>(count);
        for (int i = 0; i < count; i++) entries.Add(Entry(file, i));
        index = new Contents(baseSequence, BinaryPrimitives.ReadInt64LittleEndian(file[RecordCountOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(file[EndOffsetOffset..]), StepFor(segmentSize), queueId, entries);
        return true;
    }

    private static (int Record, int Offset) Entry(ReadOnlySpan<byte> file, int i)
    {
        ReadOnlySpan<byte> e = file.Slice(HeaderSize + i * EntrySize, EntrySize);
        return (BinaryPrimitives.ReadInt32LittleEndian(e[EntryRecordOffset..]), BinaryPrimitives.ReadInt32LittleEndian(e[EntryOffsetOffset..]));
    }

    private static string Check(ReadOnlySpan<byte> b, long baseSequence, long segmentSize, Guid queueId)
    {
        if (b.Length < HeaderSize) return $"{b.Length} bytes, shorter than the {HeaderSize}-byte header";
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(b[MagicOffset..]);
        if (magic != Magic) return $"magic 0x{magic:X16}";
        int count = BinaryPrimitives.ReadInt32LittleEndian(b[EntryCountOffset..]);
        if (count < 1 || b.Length != HeaderSize + (long)count * EntrySize)
            return $"{count} entries in a file of {b.Length} bytes";
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(b[CrcOffset..]), crc = Crc(b);
        if (stored != crc) return $"CRC32C 0x{stored:X8}, computed 0x{crc:X8}";
        if (BinaryPrimitives.ReadUInt32LittleEndian(b[VersionOffset..]) != Version) return "another version";
        if (BinaryPrimitives.ReadInt64LittleEndian(b[BaseSequenceOffset..]) != baseSequence) return "another base sequence";
        if (new Guid(b.Slice(QueueIdOffset, QueueIdSize)) != queueId) return "another queue id";
        if (BinaryPrimitives.ReadInt32LittleEndian(b[StepOffset..]) != StepFor(segmentSize)) return "another step";
        long records = BinaryPrimitives.ReadInt64LittleEndian(b[RecordCountOffset..]);
        int end = BinaryPrimitives.ReadInt32LittleEndian(b[EndOffsetOffset..]);
        if (end < SegmentLayout.FirstRecordOffset || end > segmentSize || records < 0 || records > segmentSize / SegmentLayout.RecordHeaderSize)
            return $"end offset {end} / record count {records} out of range";
        int lastRecord = -1, lastOffset = -1;
        for (int i = 0; i < count; i++)
        {
            var (r, o) = Entry(b, i);
            bool first = i == 0;
            if (first ? (r != 0 || o != SegmentLayout.FirstRecordOffset) : (r <= lastRecord || o <= lastOffset || r > records || o >= end || o % SegmentLayout.RecordAlignment != 0))
                return $"entry {i} ({r}, {o}) out of order or range";
            lastRecord = r;
            lastOffset = o;
        }
        return "";
    }

    private static uint Crc(ReadOnlySpan<byte> b)
    {
        uint crc = Crc32C.Append(Crc32C.Seed, b[..CrcOffset]);
        crc = Crc32C.Append(crc, b[(CrcOffset + sizeof(uint))..HeaderSize]);
        return Crc32C.Finish(Crc32C.Append(crc, b[HeaderSize..]));
    }
}
