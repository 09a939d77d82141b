using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Processes;

/// <summary>A lease whose process is alive: where it may still read, and who it is (text safe to print).</summary>
internal sealed record LiveLease(string Path, long LowestSequence, string Holder);

/// <summary>One pass over <c>readers/</c>: live leases, leases of dead processes removed, damaged files reported.</summary>
internal sealed record LeaseScan(IReadOnlyList<LiveLease> Live, IReadOnlyList<string> Removed, IReadOnlyList<QueueCorruptedException> Damaged)
{
    /// <summary>The lowest sequence a live reader process may still read; null when no live lease pins anything.</summary>
    public long? LowestSequence => Live.Count == 0 ? null : Live.Min(l => l.LowestSequence);
}

/// <summary>
/// The writer's view of reader processes' leases (<see cref="ReaderLease"/>): which are alive (their process
/// holds the lease's <c>flock</c>), the lowest sequence any of them still needs, and the clean-up of leases
/// whose process is gone, so a crashed reader never pins segments.
/// </summary>
/// <remarks>
/// Every file is hostile. A link, a non-regular file or a lease that fails its checks is reported with file,
/// offset, expected and found, logged, and never crashes the pass. A damaged lease whose process is alive
/// pins everything (<see cref="LiveLease.LowestSequence"/> 0): where it may still read is unknown, and nothing
/// is deleted under a live reader; its process's exit ends that. A damaged lease nobody holds is removed.
/// </remarks>
internal static class ReaderLeases
{
    /// <summary>
    /// The lock file in <c>readers/</c> that a retention pass holds exclusively from its scan of the leases to its
    /// last deletion or recycling, and that a reader takes shared for a moment after it registered (or moved its
    /// lease back): once it has the lock, any pass that scanned before the registration is over, and every later
    /// pass sees the lease. Not a lease name: the scan passes it by.
    /// </summary>
    public const string PassLockName = "pass.lock";

    /// <summary>
    /// The writer, for one retention pass that may free segments: dispose to let readers' registrations through.
    /// Waits at most <see cref="FileLocks.WriterWait"/> (a reader stopped while holding it shared must not stop
    /// retention): <see cref="LockWaitTimeoutException"/> after.
    /// </summary>
    public static SafeFileHandle HoldPass(string queueDirectory, UnixFileMode fileMode) =>
        LockPassFile(queueDirectory, fileMode, Native.Libc.LOCK_EX, FileLocks.WriterWait);

    /// <summary>A reader, after registering or moving its lease back: waits until no pass that may not have seen it is running.</summary>
    public static void WaitForPass(string queueDirectory, UnixFileMode fileMode) =>
        LockPassFile(queueDirectory, fileMode, Native.Libc.LOCK_SH, wait: null).Dispose();

    private static SafeFileHandle LockPassFile(string queueDirectory, UnixFileMode fileMode, int operation, TimeSpan? wait)
    {
        string dir = Path.Combine(queueDirectory, ReaderLease.DirectoryName);
        QueueFiles.CreateDirectory(dir, fileMode);
        string path = Path.Combine(dir, PassLockName);
        SafeFileHandle file = QueueFiles.OpenOrCreate(path, fileMode);
        try
        {
            FileLocks.LockWithin(file, operation, wait, path);
            return file; // closing it releases the lock
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private const int ReadAttempts = 3; // a read may meet the holder's header rewrite mid-way: the CRC catches it, a re-read does not

    /// <summary>Lists <c>readers/</c> of <paramref name="queueDirectory"/> (none yet is an empty scan).</summary>
    public static LeaseScan Scan(string queueDirectory, ILogger logger)
    {
        var live = new List<LiveLease>();
        var removed = new List<string>();
        var damaged = new List<QueueCorruptedException>();
        string dir = Path.Combine(queueDirectory, ReaderLease.DirectoryName);
        if (!Directory.Exists(dir)) return new LeaseScan(live, removed, damaged);
        foreach (string path in Directory.EnumerateFileSystemEntries(dir))
        {
            string name = Path.GetFileName(path);
            bool temporary = QueueFiles.IsTemporaryName(name);
            if (!temporary && !name.EndsWith(LeaseLayout.Extension, StringComparison.Ordinal)) continue;
            try
            {
                using SafeFileHandle? file = QueueFiles.TryOpenExisting(path, write: false);
                if (file is null) continue; // its reader ended between the listing and the open
                if (FileLocks.TryLockExclusive(file, path))
                {
                    // Nobody holds it: its process is gone (or never finished registering). Removed under our lock,
                    // unless its reader removed it itself between our open and our lock (a clean exit: nothing to report).
                    if (Native.Libc.FileTypeOfLink(path) == -1) continue;
                    string holder = TryDecode(file, path, out _, out string h) is null ? h : "(unreadable lease)";
                    QueueFiles.Delete(path);
                    removed.Add(path);
                    Log.DeadReaderLeaseRemoved(logger, path, holder);
                }
                else if (!temporary)
                {
                    live.Add(ReadLive(file, path, logger, damaged));
                }
            }
            catch (QueueCorruptedException e) // a link or a non-regular file planted under a lease name
            {
                damaged.Add(e);
                Log.ReaderLeaseDamaged(logger, e.FilePath, e.Offset, e.Message);
            }
            catch (UnauthorizedAccessException) when (DeadByName(name) is { } pid)
            {
                // Another user's lease the writer cannot open (a reader as another user, without the shared mode):
                // its flock cannot be tried, but the pid in its name has no process: removed like any dead lease.
                QueueFiles.Delete(path);
                removed.Add(path);
                Log.DeadReaderLeaseRemoved(logger, path, $"pid {pid} (no such process; the lease was not readable by the writer)");
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException and not FileNotFoundException) // liveness unknown
            {
                var report = QueueCorruptedException.At(path, 0, "a lease file the writer can open, lock and remove", $"{e.GetType().Name}: {e.Message}");
                damaged.Add(report);
                Log.ReaderLeaseDamaged(logger, path, 0, report.Message + " Treated as a live reader that pins every segment.");
                live.Add(new LiveLease(path, 0, "(a lease the writer cannot open)"));
            }
        }
        return new LeaseScan(live, removed, damaged);
    }

    /// <summary>
    /// The pid a lease's name starts with (<c>{pid}-{hex}.lease</c>, or its temporary) when no process has it now
    /// (<c>kill(pid, 0)</c> fails with <c>ESRCH</c>); null when it is alive, not ours to signal (<c>EPERM</c>: alive),
    /// or the name holds no pid. A reused pid keeps the lease pinned: the safe side.
    /// </summary>
    internal static int? DeadByName(string fileName)
    {
        int dash = fileName.IndexOf('-');
        if (dash <= 0 || !int.TryParse(fileName.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) || pid <= 0)
            return null;
        return Native.Libc.kill(pid, 0) != 0 && Native.Libc.LastErrno == Native.Libc.ESRCH ? pid : null;
    }

    private static LiveLease ReadLive(SafeFileHandle file, string path, ILogger logger, List<QueueCorruptedException> damaged)
    {
        QueueCorruptedException? problem = null;
        for (int attempt = 0; attempt < ReadAttempts; attempt++)
        {
            problem = TryDecode(file, path, out long lowest, out string holder);
            if (problem is null) return new LiveLease(path, lowest, holder);
            Thread.Sleep(1);
        }
        damaged.Add(problem!);
        Log.ReaderLeaseDamaged(logger, path, problem!.Offset, problem.Message + " Its process is alive: it pins every segment until it exits.");
        return new LiveLease(path, 0, "(damaged lease of a live process)");
    }

    private static QueueCorruptedException? TryDecode(SafeFileHandle file, string path, out long lowest, out string holder)
    {
        holder = "";
        byte[] bytes;
        try
        {
            bytes = QueueFiles.ReadAll(file, path, LeaseLayout.MaxLength);
        }
        catch (QueueCorruptedException e) // longer than any lease: refused before it is read
        {
            lowest = 0;
            return e;
        }
        if (!LeaseLayout.TryRead(bytes, out lowest, out ReadOnlySpan<byte> holderBytes, out FieldProblem p))
            return QueueCorruptedException.At(path, p.Offset, p.Expected, p.Found);
        holder = HolderText.Sanitize(holderBytes);
        return null;
    }
}
