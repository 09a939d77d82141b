using System.Buffers.Binary;

namespace MmapQueues.Format;

/// <summary>The <c>notify</c> file's byte layout (cross-process wake-ups), drawn here and nowhere else, and its codec.</summary>
/// <remarks>
/// <code>
/// "notify": one 4096-byte page, mapped MAP_SHARED by the writer and by every reader process. Created
/// whole under a temporary name and renamed into place, so no process maps a half-written one. Not
/// durable and not checksummed: its two counters mean nothing after every process closed it. Header
/// little-endian; the two counters in host order (they are only ever used as atomics by this host):
///    0  u64  magic     "MMQNTFY1"
///    8  u32  version   1
///   12  u32  reserved  0
///   16  ...  zero
///   64  i32  waiters   reader threads registered to wait (any process); Interlocked add/sub. Own cache line:
///                      the writer loads it after every publish, readers change it only around a wait.
///   68  ...  zero
///  128  i32  word      the futex word: the writer adds 1 (wrapping) before each FUTEX_WAKE; readers FUTEX_WAIT
///                      on the value they loaded. Own cache line.
///  132  ...  zero, to 4096
/// </code>
/// </remarks>
internal static class NotifyLayout
{
    public const string FileName = "notify";

    /// <summary>"MMQNTFY1" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3159_4654_4E51_4D4D;
    public const uint Version = 1;
    public const int Length = 4096;
    public const int MagicOffset = 0, VersionOffset = 8, HeaderLength = 16, WaitersOffset = 64, WordOffset = 128;

    /// <summary>Writes a fresh file (exactly <see cref="Length"/> bytes): header, both counters zero.</summary>
    public static void Write(Span<byte> file)
    {
        file = file[..Length];
        file.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(file[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(file[VersionOffset..], Version);
    }

    /// <summary>Checks the file's length and header; on failure <paramref name="problem"/> names the field, expected and found.</summary>
    public static bool TryCheck(long fileLength, ReadOnlySpan<byte> header, out FieldProblem problem)
    {
        problem = default;
        if (fileLength != Length)
        {
            problem = new(0, $"a file of {Length} bytes", $"{fileLength} bytes");
            return false;
        }
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(header[MagicOffset..]);
        if (magic != Magic)
        {
            problem = new(MagicOffset, $"magic 0x{Magic:X16}", $"0x{magic:X16}");
            return false;
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[VersionOffset..]);
        if (version != Version)
        {
            problem = new(VersionOffset, $"notify version {Version}", $"{version}");
            return false;
        }
        return true;
    }
}
