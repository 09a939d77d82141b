using System.Buffers.Binary;

namespace MmapQueues.Format;

/// <summary>A reader lease file's byte layout, drawn here and nowhere else, and its codec.</summary>
/// <remarks>
/// <code>
/// "readers/{pid}-{16 hex}.lease": one per reader process registration, written under a temporary name,
/// flock(LOCK_EX)'ed by its process for as long as it lives, then renamed into place. The process rewrites
/// the 32-byte header in place (one pwrite) as it moves on; the holder never changes. Not fsynced: a lease
/// means something only while its process is alive. Exactly 32 + holderLength bytes, little-endian:
///   0  u64  magic           "MMQLEAS1"
///   8  u32  version         1
///  12  u32  holderLength    0..512
///  16  i64  lowestSequence  the lowest sequence the reader may still read: retention keeps it
///  24  u32  crc             CRC32C of bytes [0, 24) and of the holder
///  28  u32  reserved        0
///  32  ...  holder          UTF-8, "pid 1234 (name) user alice"
/// </code>
/// </remarks>
internal static class LeaseLayout
{
    public const string Extension = ".lease";

    /// <summary>"MMQLEAS1" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3153_4145_4C51_4D4D;
    public const uint Version = 1;
    public const int MagicOffset = 0, VersionOffset = 8, HolderLengthOffset = 12, SequenceOffset = 16, CrcOffset = 24, HeaderLength = 32;
    public const int MaxHolderLength = 512;
    public const int MaxLength = HeaderLength + MaxHolderLength;

    /// <summary>The header (first <see cref="HeaderLength"/> bytes) for <paramref name="holder"/>, CRC included.</summary>
    public static void WriteHeader(Span<byte> header, long lowestSequence, ReadOnlySpan<byte> holder)
    {
        header = header[..HeaderLength];
        header.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[VersionOffset..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(header[HolderLengthOffset..], holder.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header[SequenceOffset..], lowestSequence);
        BinaryPrimitives.WriteUInt32LittleEndian(header[CrcOffset..], Crc(header, holder));
    }

    /// <summary>Decodes a whole lease file; on failure <paramref name="problem"/> names the field, what was expected and found.</summary>
    public static bool TryRead(ReadOnlySpan<byte> file, out long lowestSequence, out ReadOnlySpan<byte> holder, out FieldProblem problem)
    {
        lowestSequence = 0;
        holder = default;
        problem = default;
        if (file.Length < HeaderLength)
        {
            problem = new(0, $"at least {HeaderLength} bytes", $"{file.Length} bytes");
            return false;
        }
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(file[MagicOffset..]);
        if (magic != Magic)
        {
            problem = new(MagicOffset, $"magic 0x{Magic:X16}", $"0x{magic:X16}");
            return false;
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(file[VersionOffset..]);
        if (version != Version)
        {
            problem = new(VersionOffset, $"lease version {Version}", $"{version}");
            return false;
        }
        int holderLength = BinaryPrimitives.ReadInt32LittleEndian(file[HolderLengthOffset..]);
        if (holderLength is < 0 or > MaxHolderLength || file.Length != HeaderLength + holderLength)
        {
            problem = new(HolderLengthOffset, $"a holder length of 0 to {MaxHolderLength} that matches the file ({file.Length - HeaderLength} bytes after the header)", $"{holderLength}");
            return false;
        }
        holder = file.Slice(HeaderLength, holderLength);
        uint crc = Crc(file[..HeaderLength], holder), stored = BinaryPrimitives.ReadUInt32LittleEndian(file[CrcOffset..]);
        if (crc != stored)
        {
            problem = new(CrcOffset, $"CRC32C 0x{crc:X8}", $"0x{stored:X8}");
            return false;
        }
        lowestSequence = BinaryPrimitives.ReadInt64LittleEndian(file[SequenceOffset..]);
        return true;
    }

    private static uint Crc(ReadOnlySpan<byte> header, ReadOnlySpan<byte> holder) =>
        Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, header[..CrcOffset]), holder));
}
