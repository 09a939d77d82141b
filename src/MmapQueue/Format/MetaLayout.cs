using System.Buffers.Binary;

namespace MmapQueues.Format;

/// <summary>The <c>queue.meta</c> file's byte layout, drawn here and nowhere else, and its codec.</summary>
/// <remarks>
/// <code>
/// "queue.meta": written once when the queue is created (tmp, fsync, rename, directory fsync), never
/// changed; exactly 44 bytes, little-endian:
///   0  u64  magic        "MMQMETA1"
///   8  u32  version      1 (Version; unchanged by segment format 2: this file's layout did not change)
///  12  u32  reserved     0
///  16  i64  segmentSize  bytes of every segment file of the queue
///  24  16B  queueId      Guid of the queue; every segment header, index and cursors slot repeats it
///  40  u32  crc          CRC32C of bytes [0, 40)
/// </code>
/// </remarks>
internal static class MetaLayout
{
    public const string FileName = "queue.meta";

    /// <summary>"MMQMETA1" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3141_5445_4D51_4D4D;
    public const int MagicOffset = 0, VersionOffset = 8, ReservedOffset = 12, SegmentSizeOffset = 16, QueueIdOffset = 24, CrcOffset = 40;
    public const int QueueIdSize = 16;
    /// <summary>The version of this file's layout (segments carry their own, in their headers).</summary>
    public const uint Version = 1;
    public const int Length = CrcOffset + sizeof(uint);

    /// <summary>Encodes the file (exactly <see cref="Length"/> bytes), CRC included.</summary>
    public static void Write(Span<byte> file, long segmentSize, Guid queueId)
    {
        file = file[..Length];
        file.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(file[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(file[VersionOffset..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(file[SegmentSizeOffset..], segmentSize);
        queueId.TryWriteBytes(file.Slice(QueueIdOffset, QueueIdSize));
        BinaryPrimitives.WriteUInt32LittleEndian(file[CrcOffset..], Crc32C.Compute(file[..CrcOffset]));
    }

    /// <summary>Decodes and checks the file; on failure <paramref name="problem"/> names the field, what was expected and found.</summary>
    public static bool TryRead(ReadOnlySpan<byte> file, out long segmentSize, out Guid queueId, out FieldProblem problem)
    {
        segmentSize = 0;
        queueId = default;
        problem = default;
        if (file.Length != Length)
        {
            problem = new(0, $"{Length} bytes", $"{file.Length} bytes");
            return false;
        }
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(file[MagicOffset..]);
        if (magic != Magic)
        {
            problem = new(MagicOffset, $"magic 0x{Magic:X16}", $"0x{magic:X16}");
            return false;
        }
        uint crc = Crc32C.Compute(file[..CrcOffset]), stored = BinaryPrimitives.ReadUInt32LittleEndian(file[CrcOffset..]);
        if (crc != stored)
        {
            problem = new(CrcOffset, $"CRC32C 0x{crc:X8}", $"0x{stored:X8}");
            return false;
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(file[VersionOffset..]);
        if (version != Version)
        {
            problem = new(VersionOffset, $"format version {Version}", $"{version}");
            return false;
        }
        segmentSize = BinaryPrimitives.ReadInt64LittleEndian(file[SegmentSizeOffset..]);
        queueId = new Guid(file.Slice(QueueIdOffset, QueueIdSize));
        return true;
    }
}
