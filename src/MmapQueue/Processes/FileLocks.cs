using Microsoft.Win32.SafeHandles;
using MmapQueues.Native;

namespace MmapQueues.Processes;

/// <summary>
/// <c>flock(2)</c> on files of the queue directory, called directly (not .NET's <see cref="FileShare"/> emulation).
/// A lock belongs to the open file description: it lasts until the descriptor is closed or its process ends,
/// so the kernel releases the lock of a process that crashed.
/// </summary>
internal static class FileLocks
{
    /// <summary>Takes <c>LOCK_EX | LOCK_NB</c>; false when another open file description holds a lock on the file.</summary>
    public static bool TryLockExclusive(SafeFileHandle file, string pathForErrors)
    {
        while (true)
        {
            if (Libc.flock((int)file.DangerousGetHandle(), Libc.LOCK_EX | Libc.LOCK_NB) == 0) return true;
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
}
