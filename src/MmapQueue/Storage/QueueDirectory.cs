using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>
/// The queue directory: <c>queue.meta</c> (format version, segment size, queue id; written once,
/// crash-atomically; layout in <see cref="MetaLayout"/>), the writer's <c>lock</c> file, and the list of segment files.
/// </summary>
internal static class QueueDirectory
{
    public readonly record struct Meta(long SegmentSize, Guid QueueId);

    /// <summary>Reads queue.meta, or creates it (tmp, write, fsync, rename, fsync directory) for a new queue.</summary>
    public static Meta OpenOrCreateMeta(string directory, long segmentSizeForNewQueue, Guid? queueIdForNewQueue = null)
    {
        string path = Path.Combine(directory, SegmentNames.MetaName);
        if (File.Exists(path)) return ReadMeta(path);

        var meta = new Meta(segmentSizeForNewQueue, queueIdForNewQueue ?? Guid.NewGuid());
        Span<byte> b = stackalloc byte[MetaLayout.Length];
        MetaLayout.Write(b, meta.SegmentSize, meta.QueueId);
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
        if (!MetaLayout.TryRead(File.ReadAllBytes(path), out long segmentSize, out Guid queueId, out FieldProblem p))
            throw QueueCorruptedException.At(path, p.Offset, p.Expected, p.Found);
        return new Meta(segmentSize, queueId);
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
