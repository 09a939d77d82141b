using System.Buffers.Binary;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// What a user would write instead of a queue: a FileStream append log of [u32 length][u32 crc][payload]
/// records with a 1 MiB buffer, read back in 1 MiB chunks with every CRC checked. The CRC is the same
/// hardware CRC32C the queue uses, so the comparison is about the storage path, not the checksum.
/// </summary>
internal sealed class FileStreamLog : IDisposable
{
    public const int BufferSize = 1 << 20;
    private readonly FileStream _file;
    private readonly byte[] _header = new byte[8];

    public FileStreamLog(string path) =>
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, BufferSize, FileOptions.None);

    public void Append(ReadOnlySpan<byte> payload)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_header, payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(_header.AsSpan(4), Crc32C.Compute(payload));
        _file.Write(_header);
        _file.Write(payload);
    }

    /// <summary><c>Flush(true)</c>: the buffer to the kernel, then fsync (.NET has no fdatasync).</summary>
    public void FlushToDisk() => _file.Flush(flushToDisk: true);

    public void Dispose() => _file.Dispose();

    /// <summary>Reads every record of the log in 1 MiB chunks, checking each CRC; returns (records, payload bytes).</summary>
    public static (long Records, long Bytes) ReadAll(string path, byte[] scratch)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        long records = 0, bytes = 0;
        int have = 0;
        while (true)
        {
            int got = file.Read(scratch, have, Math.Min(BufferSize, scratch.Length - have));
            if (got == 0) break;
            have += got;
            int pos = 0;
            while (have - pos >= 8)
            {
                int length = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(pos));
                if (have - pos - 8 < length) break;
                uint stored = BinaryPrimitives.ReadUInt32LittleEndian(scratch.AsSpan(pos + 4));
                ReadOnlySpan<byte> payload = scratch.AsSpan(pos + 8, length);
                if (Crc32C.Compute(payload) != stored)
                    throw new InvalidDataException($"{path}: CRC mismatch in the record at chunk offset {pos}: expected 0x{stored:X8}, found 0x{Crc32C.Compute(payload):X8}");
                records++;
                bytes += length;
                pos += 8 + length;
            }
            Buffer.BlockCopy(scratch, pos, scratch, 0, have - pos);
            have -= pos;
        }
        if (have != 0) throw new InvalidDataException($"{path}: {have} bytes of a torn record at the end");
        return (records, bytes);
    }
}
