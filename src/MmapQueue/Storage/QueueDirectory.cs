using System.Buffers.Binary;
using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>
/// The queue directory: <c>queue.meta</c> (format version, segment size, queue id; written once,
/// crash-atomically), the writer's <c>lock</c> file, and the list of segment files.
/// </summary>
internal static class QueueDirectory
{
    // queue.meta: u64 magic "MMQMETA1" | u32 version | u32 reserved | u64 segment size | 16B queue id | u32 crc32c of [0,40)
    private const ulong MetaMagic = 0x3141_5445_4D51_4D4D;
    private const int MetaLength = 44;

    public readonly record struct Meta(long SegmentSize, Guid QueueId);

    /// <summary>Reads queue.meta, or creates it (tmp, write, fsync, rename, fsync directory) for a new queue.</summary>
    public static Meta OpenOrCreateMeta(string directory, long segmentSizeForNewQueue, Guid? queueIdForNewQueue = null)
    {
        string path = Path.Combine(directory, SegmentNames.MetaName);
        if (File.Exists(path)) return ReadMeta(path);

        var meta = new Meta(segmentSizeForNewQueue, queueIdForNewQueue ?? Guid.NewGuid());
        Span<byte> b = stackalloc byte[MetaLength];
        b.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(b, MetaMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], SegmentLayout.FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], meta.SegmentSize);
        meta.QueueId.TryWriteBytes(b[24..40]);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], Crc32C.Compute(b[..40]));
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(b);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        Native.Libc.FsyncDirectory(directory);
        return meta;
    }

    /// <summary>Reads and validates queue.meta.</summary>
    public static Meta ReadMeta(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        if (b.Length != MetaLength)
            throw QueueCorruptedException.At(path, 0, $"{MetaLength} bytes", $"{b.Length} bytes");
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (magic != MetaMagic)
            throw QueueCorruptedException.At(path, 0, $"magic 0x{MetaMagic:X16}", $"0x{magic:X16}");
        uint crc = Crc32C.Compute(b.AsSpan(0, 40)), stored = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(40));
        if (crc != stored)
            throw QueueCorruptedException.At(path, 40, $"CRC32C 0x{crc:X8}", $"0x{stored:X8}");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
        if (version != SegmentLayout.FormatVersion)
            throw QueueCorruptedException.At(path, 8, $"format version {SegmentLayout.FormatVersion}", $"{version}");
        return new Meta(BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(16)), new Guid(b.AsSpan(24, 16)));
    }

    /// <summary>
    /// Takes the writer lock: <c>flock</c> (through <see cref="FileShare.None"/>) on the lock file, which then
    /// holds the owner's process id. A second writer, in this process or another, gets an error naming it.
    /// </summary>
    public static FileStream AcquireLock(string directory)
    {
        string path = Path.Combine(directory, SegmentNames.LockName);
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (File.Exists(path))
        {
            string holder = ReadHolder(path);
            throw new IOException($"Queue {directory} is already open for writing by {holder} (lock file {path}); " +
                                  "only one MmapQueue may write a queue directory at a time.", e);
        }
        fs.SetLength(0);
        using (var w = new StreamWriter(fs, leaveOpen: true)) w.Write($"pid {Environment.ProcessId} ({Environment.ProcessPath})");
        fs.Flush();
        return fs;
    }

    internal static string ReadHolder(string path)
    {
        // Opened with libc, not FileStream: .NET takes a shared flock for every FileStream, which the
        // holder's exclusive lock would refuse.
        int fd = Native.Libc.open(path, Native.Libc.O_RDONLY | Native.Libc.O_CLOEXEC, 0);
        if (fd < 0) return $"another process (lock file unreadable: {Native.Libc.LastError()})";
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        Span<byte> buf = stackalloc byte[512];
        int n = RandomAccess.Read(handle, buf, 0);
        string text = System.Text.Encoding.UTF8.GetString(buf[..n]).Trim();
        return text.Length > 0 ? $"process {text}" : "another process (no pid recorded yet)";
    }

    /// <summary>Segment files by base sequence, ascending.</summary>
    public static List<(long Base, string Path)> ListSegments(string directory)
    {
        var list = new List<(long, string)>();
        foreach (string file in Directory.EnumerateFiles(directory, "*" + SegmentNames.Extension))
            if (SegmentNames.TryParse(Path.GetFileName(file), out long b)) list.Add((b, file));
        list.Sort((x, y) => x.Item1.CompareTo(y.Item1));
        return list;
    }
}
