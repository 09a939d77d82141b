using System.Text;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Native;
using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>
/// The queue directory: <c>queue.meta</c> (format version, segment size, queue id; written once,
/// crash-atomically; layout in <see cref="MetaLayout"/>), the writer's <c>lock</c> file, and the list of segment files.
/// </summary>
internal static class QueueDirectory
{
    public readonly record struct Meta(long SegmentSize, Guid QueueId);

    /// <summary>Reads queue.meta, or creates it crash-atomically (<see cref="QueueFiles.ReplaceAtomically"/>) for a new queue.</summary>
    public static Meta OpenOrCreateMeta(string directory, long segmentSizeForNewQueue, Guid? queueIdForNewQueue, UnixFileMode fileMode)
    {
        string path = Path.Combine(directory, SegmentNames.MetaName);
        if (TryReadMeta(path) is { } existing) return existing;

        var meta = new Meta(segmentSizeForNewQueue, queueIdForNewQueue ?? Guid.NewGuid());
        Span<byte> b = stackalloc byte[MetaLayout.Length];
        MetaLayout.Write(b, meta.SegmentSize, meta.QueueId);
        QueueFiles.ReplaceAtomically(path, b, fileMode, durable: true);
        return meta;
    }

    /// <summary>Reads and validates queue.meta.</summary>
    public static Meta ReadMeta(string path) =>
        TryReadMeta(path) ?? throw new FileNotFoundException($"{path} does not exist.", path);

    /// <summary>Reads and validates queue.meta; null when there is none.</summary>
    public static Meta? TryReadMeta(string path)
    {
        byte[]? b = QueueFiles.TryReadAll(path, MetaLayout.Length);
        if (b is null) return null;
        if (!MetaLayout.TryRead(b, out long segmentSize, out Guid queueId, out FieldProblem p))
            throw QueueCorruptedException.At(path, p.Offset, p.Expected, p.Found);
        return new Meta(segmentSize, queueId);
    }

    /// <summary>
    /// Takes the writer lock: <c>flock(LOCK_EX | LOCK_NB)</c>, called directly (not .NET's <see cref="FileShare"/>
    /// emulation, which <c>DOTNET_SYSTEM_IO_DISABLEFILELOCKING</c> switches off) on the lock file, which then
    /// holds the owner's process id. A second writer, in this process or another, gets an error naming it.
    /// The lock lasts until the returned handle is closed, or the process ends.
    /// </summary>
    public static SafeFileHandle AcquireLock(string directory, UnixFileMode fileMode)
    {
        string path = Path.Combine(directory, SegmentNames.LockName);
        SafeFileHandle file = QueueFiles.OpenOrCreate(path, fileMode);
        try
        {
            int fd = (int)file.DangerousGetHandle();
            if (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
            {
                if (Libc.LastErrno != Libc.EWOULDBLOCK) throw new IOException($"flock of {path} failed: {Libc.LastError()}");
                throw new IOException($"Queue {directory} is already open for writing by {ReadHolder(path)} (lock file {path}); " +
                                      "only one MmapQueue may write a queue directory at a time.") { Data = { [HeldKey] = true } };
            }
            byte[] holder = Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} ({Environment.ProcessPath})");
            if (Libc.ftruncate(fd, 0) != 0) throw new IOException($"ftruncate of {path} failed: {Libc.LastError()}");
            RandomAccess.Write(file, holder, 0);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private const string HeldKey = "MmapQueue.WriterLockHeld";

    /// <summary>True for the error of <see cref="AcquireLock"/> when another writer holds the lock (the CLI then opens the queue read-only).</summary>
    internal static bool IsHeldByAnotherWriter(IOException e) => e.Data[HeldKey] is true;

    /// <summary>
    /// The holder recorded in a lock file, as text for an error message. Read without taking a lock, and
    /// never through a link; the text is the file's (a local user's) and callers that print it escape it.
    /// </summary>
    internal static string ReadHolder(string path)
    {
        const int MaxHolderBytes = 512;
        using SafeFileHandle? file = QueueFiles.TryOpenExisting(path, write: false);
        if (file is null) return "another process (no lock file)";
        Span<byte> buf = stackalloc byte[MaxHolderBytes];
        int n = RandomAccess.Read(file, buf, 0);
        string text = Encoding.UTF8.GetString(buf[..n]).Trim();
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
