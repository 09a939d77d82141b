using System.Runtime.InteropServices;

namespace MmapQueues.Native;

/// <summary>The libc calls MmapQueue needs; each returns -1 and sets errno on failure.</summary>
internal static partial class Libc
{
    public const int PROT_READ = 0x1, PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public const int MS_ASYNC = 1, MS_SYNC = 4;
    public const int MADV_RANDOM = 1, MADV_SEQUENTIAL = 2, MADV_WILLNEED = 3, MADV_DONTNEED = 4;
    public const int MADV_POPULATE_WRITE = 23;
    public const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    public const int EINTR = 4, EAGAIN = 11, EINVAL = 22, ENOSPC = 28, EOPNOTSUPP = 95;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int msync(nint addr, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int madvise(nint addr, nuint length, int advice);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mlock(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munlock(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendfile64(int outFd, int inFd, ref long offset, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getpid();

    /// <summary>The errno of the last call, with its text.</summary>
    public static string LastError()
    {
        int errno = Marshal.GetLastPInvokeError();
        return $"errno {errno}: {Marshal.GetPInvokeErrorMessage(errno)}";
    }

    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>fsync a directory so that entries created or renamed in it survive power loss.</summary>
    public static void FsyncDirectory(string directory)
    {
        int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"open({directory}) for fsync failed: {LastError()}");
        try
        {
            if (fsync(fd) != 0) throw new IOException($"fsync of directory {directory} failed: {LastError()}");
        }
        finally
        {
            close(fd);
        }
    }
}
