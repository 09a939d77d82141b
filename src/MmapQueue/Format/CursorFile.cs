using System.Buffers.Binary;
using System.Text;

namespace MmapQueues.Format;

/// <summary>The durable state kept in the cursors file: committed positions and the retention floor.</summary>
internal sealed record CursorState(long Generation, long RetainedFrom, IReadOnlyDictionary<string, long> Committed)
{
    public static readonly CursorState Empty = new(0, 0, new Dictionary<string, long>(StringComparer.Ordinal));
}

/// <summary>
/// Encodes, decodes and picks the slots of the cursors file (layout drawn in <see cref="CursorsLayout"/>).
/// Pure functions over bytes, so the torn-write test can feed it every torn variant.
/// </summary>
internal static class CursorFile
{
    /// <summary>
    /// UTF-8 that throws on what it cannot encode or decode. The lenient default would store a lone surrogate
    /// as U+FFFD, so the name read back would differ from the one committed and its position be orphaned.
    /// </summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> unless <paramref name="name"/> is well-formed UTF-16 (no lone
    /// surrogate) whose UTF-8 form is 1 to <see cref="CursorsLayout.MaxNameBytes"/> bytes: what an entry's
    /// one-byte length prefix can hold and what reads back as the same string.
    /// </summary>
    public static void ValidateName(string name, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(name, parameterName);
        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(name);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"A consumer name must be valid Unicode; found a lone surrogate U+{(int)e.CharUnknown:X4} " +
                                        $"at index {e.Index} of a {name.Length}-character name.", parameterName, e);
        }
        if (bytes is 0 or > CursorsLayout.MaxNameBytes)
            throw new ArgumentException($"A consumer name must be 1 to {CursorsLayout.MaxNameBytes} bytes of UTF-8; " +
                                        $"'{name}' has {bytes}.", parameterName);
    }

    /// <summary>The largest slot: 64 MiB, over 200,000 consumers of the longest name. Readers refuse a longer file.</summary>
    public const int MaxSlotSize = 64 << 20;

    /// <summary>The slot size that fits <paramref name="state"/>: a multiple of 4096, at most <see cref="MaxSlotSize"/>.</summary>
    public static int SlotSizeFor(CursorState state)
    {
        long needed = CursorsLayout.HeaderSize + BodyLength(state);
        if (needed > MaxSlotSize)
            throw new InvalidOperationException($"The cursors file cannot hold {state.Committed.Count} consumers: they need a {needed}-byte slot, " +
                                                $"at most {MaxSlotSize} is allowed. Remove consumers that are no longer used.");
        return (int)((needed + CursorsLayout.MinSlotSize - 1) / CursorsLayout.MinSlotSize * CursorsLayout.MinSlotSize);
    }

    /// <summary>Writes <paramref name="state"/> into <paramref name="slot"/> (the whole slot, zero padded).</summary>
    public static void EncodeSlot(Span<byte> slot, CursorState state, Guid queueId)
    {
        slot.Clear();
        long needed = CursorsLayout.HeaderSize + BodyLength(state);
        if (needed > slot.Length)
            throw new ArgumentException($"cursor state needs {needed} bytes; slot has {slot.Length}");
        int body = (int)needed - CursorsLayout.HeaderSize;
        BinaryPrimitives.WriteUInt64LittleEndian(slot[CursorsLayout.MagicOffset..], CursorsLayout.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[CursorsLayout.VersionOffset..], CursorsLayout.Version);
        BinaryPrimitives.WriteInt32LittleEndian(slot[CursorsLayout.SlotSizeOffset..], slot.Length);
        BinaryPrimitives.WriteInt64LittleEndian(slot[CursorsLayout.GenerationOffset..], state.Generation);
        queueId.TryWriteBytes(slot.Slice(CursorsLayout.QueueIdOffset, CursorsLayout.QueueIdSize));
        BinaryPrimitives.WriteInt32LittleEndian(slot[CursorsLayout.CountOffset..], state.Committed.Count);
        BinaryPrimitives.WriteInt32LittleEndian(slot[CursorsLayout.BodyLengthOffset..], body);
        BinaryPrimitives.WriteInt64LittleEndian(slot[CursorsLayout.RetainedFromOffset..], state.RetainedFrom);
        int at = CursorsLayout.HeaderSize;
        foreach (var (name, sequence) in state.Committed.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            int n = StrictUtf8.GetBytes(name, slot[(at + CursorsLayout.EntryNameOffset)..]);
            slot[at + CursorsLayout.EntryNameLengthOffset] = (byte)n;
            at += CursorsLayout.EntryNameOffset + n;
            BinaryPrimitives.WriteInt64LittleEndian(slot[at..], sequence);
            at += CursorsLayout.EntrySequenceSize;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(slot[CursorsLayout.CrcOffset..], Crc(slot, body));
    }

    /// <summary>
    /// Picks the newest valid slot of a whole cursors file. A slot that fails its CRC is a torn or stale
    /// write and is ignored; if neither slot is valid the file is corrupt and the error says what each held.
    /// </summary>
    public static CursorState Decode(ReadOnlySpan<byte> file, Guid queueId, string pathForErrors)
    {
        if (file.Length < 2 * CursorsLayout.MinSlotSize || file.Length % (2 * CursorsLayout.MinSlotSize) != 0)
            throw QueueCorruptedException.At(pathForErrors, 0,
                $"a length that is 2 slots of a multiple of {CursorsLayout.MinSlotSize} bytes", $"{file.Length} bytes");
        int slotSize = file.Length / 2;
        CursorState? best = null;
        var problems = new string[2];
        for (int i = 0; i < 2; i++)
        {
            CursorState? s = TryDecodeSlot(file.Slice(i * slotSize, slotSize), queueId, out problems[i]);
            if (s is not null && (best is null || s.Generation > best.Generation)) best = s;
        }
        return best ?? throw QueueCorruptedException.At(pathForErrors, 0,
            "at least one cursor slot with a valid CRC32C (slots at offsets 0 and " + slotSize + ")",
            $"slot 0: {problems[0]}; slot 1: {problems[1]}");
    }

    private static CursorState? TryDecodeSlot(ReadOnlySpan<byte> slot, Guid queueId, out string problem)
    {
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(slot[CursorsLayout.MagicOffset..]);
        if (magic != CursorsLayout.Magic) { problem = $"magic 0x{magic:X16}"; return null; }
        int body = BinaryPrimitives.ReadInt32LittleEndian(slot[CursorsLayout.BodyLengthOffset..]);
        if (body < 0 || body > slot.Length - CursorsLayout.HeaderSize) { problem = $"body length {body}"; return null; }
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(slot[CursorsLayout.CrcOffset..]);
        uint crc = Crc(slot, body);
        if (stored != crc) { problem = $"CRC32C 0x{stored:X8}, computed 0x{crc:X8}"; return null; }
        // From here the slot is what we wrote: a mismatch below is a real inconsistency, not a tear.
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(slot[CursorsLayout.VersionOffset..]);
        int slotSize = BinaryPrimitives.ReadInt32LittleEndian(slot[CursorsLayout.SlotSizeOffset..]);
        var id = new Guid(slot.Slice(CursorsLayout.QueueIdOffset, CursorsLayout.QueueIdSize));
        if (version != CursorsLayout.Version) { problem = $"version {version} (expected {CursorsLayout.Version})"; return null; }
        if (slotSize != slot.Length) { problem = $"slot size {slotSize} (file says {slot.Length})"; return null; }
        if (id != queueId) { problem = $"queue id {id} (expected {queueId})"; return null; }
        long generation = BinaryPrimitives.ReadInt64LittleEndian(slot[CursorsLayout.GenerationOffset..]);
        long retainedFrom = BinaryPrimitives.ReadInt64LittleEndian(slot[CursorsLayout.RetainedFromOffset..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(slot[CursorsLayout.CountOffset..]);
        var committed = new Dictionary<string, long>(StringComparer.Ordinal);
        int at = CursorsLayout.HeaderSize, end = CursorsLayout.HeaderSize + body;
        for (int i = 0; i < count; i++)
        {
            if (at >= end || at + CursorsLayout.EntryLength(slot[at + CursorsLayout.EntryNameLengthOffset]) > end)
            {
                problem = $"entry {i} runs past the body ({body} bytes)";
                return null;
            }
            int n = slot[at + CursorsLayout.EntryNameLengthOffset];
            string name;
            try
            {
                name = StrictUtf8.GetString(slot.Slice(at + CursorsLayout.EntryNameOffset, n));
            }
            catch (DecoderFallbackException)
            {
                problem = $"entry {i} has a name that is not valid UTF-8";
                return null;
            }
            at += CursorsLayout.EntryNameOffset + n;
            committed[name] = BinaryPrimitives.ReadInt64LittleEndian(slot[at..]);
            at += CursorsLayout.EntrySequenceSize;
        }
        problem = "";
        return new CursorState(generation, retainedFrom, committed);
    }

    private static long BodyLength(CursorState state)
    {
        long total = 0;
        foreach (string name in state.Committed.Keys) total += CursorsLayout.EntryLength(StrictUtf8.GetByteCount(name));
        return total;
    }

    private static uint Crc(ReadOnlySpan<byte> slot, int bodyLength)
    {
        uint crc = Crc32C.Append(Crc32C.Seed, slot[..CursorsLayout.CrcOffset]);
        crc = Crc32C.Append(crc, slot[(CursorsLayout.CrcOffset + sizeof(uint))..CursorsLayout.HeaderSize]);
        return Crc32C.Finish(Crc32C.Append(crc, slot.Slice(CursorsLayout.HeaderSize, bodyLength)));
    }
}

/// <summary>The cursors file's byte layout, drawn here and nowhere else; <see cref="CursorFile"/> is its codec.</summary>
/// <remarks>
/// <code>
/// Cursors file "cursors": two slots of slotSize bytes (a multiple of 4096), at 0 and at slotSize; the
/// file is exactly 2 * slotSize long. As LMDB's two meta pages: generation g is written into slot g % 2
/// (in place, then fdatasync), so a torn write can only damage the slot that does not hold the newest
/// durable state; the reader takes the valid slot with the higher generation. Growing the slot rewrites
/// the whole file (tmp, fsync, rename, directory fsync). Little-endian:
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
///  64  body: count x entry, sorted by name (ordinal)
///
/// Entry:
///   0  u8   nameLength   1..255
///   1  ...  name         UTF-8, nameLength bytes
///   1+nameLength  i64    committed sequence (the next one to read)
/// </code>
/// </remarks>
internal static class CursorsLayout
{
    /// <summary>"MMQCUR01" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3130_5255_4351_4D4D;
    public const uint Version = 1;
    public const int HeaderSize = 64;
    public const int MagicOffset = 0, VersionOffset = 8, SlotSizeOffset = 12, GenerationOffset = 16, QueueIdOffset = 24;
    public const int CountOffset = 40, BodyLengthOffset = 44, CrcOffset = 48, RetainedFromOffset = 56;
    public const int QueueIdSize = 16;
    public const int EntryNameLengthOffset = 0, EntryNameOffset = 1, EntrySequenceSize = sizeof(long);
    public const int MaxNameBytes = 255;
    public const int MinSlotSize = SegmentLayout.PageSize;

    /// <summary>Bytes an entry whose name is <paramref name="nameBytes"/> long takes.</summary>
    public static int EntryLength(int nameBytes) => EntryNameOffset + nameBytes + EntrySequenceSize;
}
