using Microsoft.Win32.SafeHandles;
using MmapQueues.Native;

namespace MmapQueues.Processes;

/// <summary>
/// <c>flock(2)</c> on files of the queue directory, called directly (not .NET's <see cref="FileShare"/> emulation).
/// A lock belongs to the open file description: it lasts until the descriptor is closed or its process ends,
/// so the kernel releases the lock of a process that crashed.
/// </summary>
/// <remarks>
/// The writer never waits without bound for a lock a reader process may hold (<see cref="LockWithin"/>): a reader
/// stopped (SIGSTOP, a debugger) while holding <c>cursors.lock</c> or <c>readers/pass.lock</c> must not stop appends
/// or retention. After a timeout, the same lock is tried only once for the next 5 s, so back-to-back passes do not
/// each wait the whole bound. Readers wait (<see cref="Lock"/>): the writer holds those locks only for bounded work.
/// </remarks>
internal static class FileLocks
{
    /// <summary>How long the writer tries a lock a reader process may hold before it gives up (<see cref="LockWithin"/>).</summary>
    public static readonly TimeSpan WriterWait = TimeSpan.FromSeconds(2);

    /// <summary>Takes <c>LOCK_EX | LOCK_NB</c>; false when another open file description holds a lock on the file.</summary>
    public static bool TryLockExclusive(SafeFileHandle file, string pathForErrors) => TryLock(file, Libc.LOCK_EX, pathForErrors);

    private static bool TryLock(SafeFileHandle file, int operation, string pathForErrors)
    {
        while (true)
        {
            if (Libc.flock((int)file.DangerousGetHandle(), operation | Libc.LOCK_NB) == 0) return true;
            int errno = Libc.LastErrno;
            if (errno == Libc.EWOULDBLOCK) return false;
            if (errno != Libc.EINTR) throw new IOException($"flock of {pathForErrors} failed: {Libc.LastError()}");
        }
    }

    /// <summary>Takes <paramref name="operation"/> (<c>LOCK_EX</c> or <c>LOCK_SH</c>), waiting for it.</summary>
    public static void Lock(SafeFileHandle file, int operation, string pathForErrors)
    {
        while (Libc.flock((int)file.DangerousGetHandle(), operation) != 0)
            if (Libc.LastErrno != Libc.EINTR) throw new IOException($"flock of {pathForErrors} failed: {Libc.LastError()}");
    }

    /// <summary>
    /// Takes <paramref name="operation"/> without blocking, retrying every few milliseconds for at most
    /// <paramref name="wait"/> (<see cref="Lock"/> when null).
    /// </summary>
    /// <exception cref="LockWaitTimeoutException">Another process held it all that time (the message names the lock and its holder, when known).</exception>
    public static void LockWithin(SafeFileHandle file, int operation, TimeSpan? wait, string path)
    {
        if (wait is not { } limit)
        {
            Lock(file, operation, path);
            return;
        }
        long now = Environment.TickCount64;
        // After a timeout, attempts in the next few seconds try once and give up at once: passes scheduled one after
        // another (each roll, each index build) must not each spend the whole wait behind the same stopped reader.
        bool stuck = s_stuckUntil.TryGetValue(path, out long until) && now < until;
        long giveUpAt = stuck ? now : now + (long)limit.TotalMilliseconds;
        while (!TryLock(file, operation, path))
        {
            if (Environment.TickCount64 >= giveUpAt)
            {
                if (!stuck) s_stuckUntil[path] = Environment.TickCount64 + StuckMemoryMilliseconds;
                throw new LockWaitTimeoutException(path, $"{path} is held by {DescribeHolders(file, path)} " +
                                                         (stuck ? $"(it was held for more than {limit.TotalSeconds:0.#} s a moment ago, so the writer did not wait again)"
                                                                : $"for more than {limit.TotalSeconds:0.#} s") +
                                                         " (a reader process stopped or stuck while holding it?); the writer does not wait longer for it.");
            }
            Thread.Sleep(5);
        }
        if (stuck || s_stuckUntil.ContainsKey(path)) s_stuckUntil.TryRemove(path, out _);
    }

    private const long StuckMemoryMilliseconds = 5_000;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> s_stuckUntil = new(StringComparer.Ordinal); // lock path -> TickCount64

    /// <summary>Who holds a lock on the file, from <c>/proc/locks</c> (matched by inode): "pid N (name)", or a phrase saying it is unknown.</summary>
    public static string DescribeHolders(SafeFileHandle file, string path)
    {
        try
        {
            string inode = ":" + Libc.InodeOf((int)file.DangerousGetHandle(), path).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var holders = new List<string>();
            foreach (string line in File.ReadLines("/proc/locks"))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters carry "->" before the type.
                if (f.Length < 6 || f[1] != "FLOCK" || !f[5].EndsWith(inode, StringComparison.Ordinal)) continue;
                if (!int.TryParse(f[4], out int pid) || pid == Environment.ProcessId) continue;
                string comm = File.Exists($"/proc/{pid}/comm") ? HolderText.Sanitize(System.Text.Encoding.UTF8.GetBytes(File.ReadAllText($"/proc/{pid}/comm").Trim())) : "?";
                holders.Add($"pid {pid} ({comm})");
            }
            return holders.Count == 0 ? "another process (not found in /proc/locks)" : string.Join(", ", holders.Distinct());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"another process (/proc/locks unreadable: {e.Message})";
        }
    }
}

/// <summary>The writer gave up waiting for a lock a reader process holds (<see cref="FileLocks.LockWithin"/>).</summary>
internal sealed class LockWaitTimeoutException(string lockPath, string message) : IOException(message)
{
    /// <summary>The lock file.</summary>
    public string LockPath { get; } = lockPath;
}
