using System.Runtime.InteropServices;

namespace MmapQueues.Native;

/// <summary>The libc calls MmapQueue needs; each returns -1 and sets errno on failure.</summary>
internal static partial class Libc
{
    public const int PROT_READ = 0x1, PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20; // the same on x86-64 and arm64
    public const int MS_ASYNC = 1, MS_SYNC = 4;
    public const int MADV_RANDOM = 1, MADV_SEQUENTIAL = 2, MADV_WILLNEED = 3, MADV_DONTNEED = 4;
    public const int MADV_HUGEPAGE = 14, MADV_POPULATE_WRITE = 23;
    /// <summary><c>fallocate</c> mode: the range reads as zeros afterwards, blocks stay allocated (ext4, XFS; not tmpfs).</summary>
    public const int FALLOC_FL_ZERO_RANGE = 0x10;
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    // O_DIRECTORY and O_NOFOLLOW are the two flags whose values differ between the architectures .NET runs on:
    // arm, arm64 and powerpc have their own (asm/fcntl.h), where the generic values mean O_DIRECT and
    // O_LARGEFILE. Generic values there would open every queue file following links, and the directory with
    // O_DIRECT (which recent kernels refuse for a directory with EINVAL).
    private static readonly bool ArmOrPowerFlags = RuntimeInformation.ProcessArchitecture is
        Architecture.Arm or Architecture.Armv6 or Architecture.Arm64 or Architecture.Ppc64le;
    public static readonly int O_DIRECTORY = ArmOrPowerFlags ? 0x4000 : 0x10000, O_NOFOLLOW = ArmOrPowerFlags ? 0x8000 : 0x20000;
    public const int ESRCH = 3, EACCES = 13, EPERM = 1;
    public const int ENOENT = 2, EINTR = 4, EAGAIN = 11, EWOULDBLOCK = EAGAIN, EEXIST = 17, ENOTDIR = 20, EINVAL = 22;
    public const int ENOSPC = 28, ENOSYS = 38, ELOOP = 40, EOPNOTSUPP = 95;
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    public const int F_GETFL = 3, F_SETFL = 4;
    public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000, STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_INO = 0x100, RENAME_NOREPLACE = 1;
    public const int S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IFIFO = 0x1000, S_IFSOCK = 0xC000;
    public const int S_IFCHR = 0x2000, S_IFBLK = 0x6000;

    /// <summary>Size of <c>struct statx</c> (the same on every architecture) and the offset of its u16 <c>stx_mode</c>.</summary>
    public const int StatxSize = 256, StatxModeOffset = 28, StatxInodeOffset = 32;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int openat(int dirFd, string name, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int renameat(int oldDirFd, string oldName, int newDirFd, string newName);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int renameat2(int oldDirFd, string oldName, int newDirFd, string newName, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlinkat(int dirFd, string name, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int statx(int dirFd, string name, int flags, uint mask, Span<byte> buffer);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fchown(int fd, uint owner, uint group);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

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
    public static void FsyncDirectory(string directory) => Storage.QueueFiles.FsyncDirectory(directory);

    /// <summary>The file type and permission bits (<c>st_mode</c>) of an open descriptor.</summary>
    public static int FileModeOf(int fd, string pathForErrors)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE, buffer) != 0)
            throw new IOException($"statx of {pathForErrors} failed: {LastError()}");
        return MemoryMarshal.Read<ushort>(buffer[StatxModeOffset..]); // host order, as the kernel wrote it
    }

    /// <summary>The owner, group and permission bits of an open descriptor (<c>stx_uid</c> at 20, <c>stx_gid</c> at 24).</summary>
    public static (uint Uid, uint Gid, int Mode) OwnerOf(int fd, string pathForErrors)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (statx(fd, "", AT_EMPTY_PATH, STATX_MODE | StatxUid | StatxGid, buffer) != 0)
            throw new IOException($"statx of {pathForErrors} failed: {LastError()}");
        return (MemoryMarshal.Read<uint>(buffer[20..]), MemoryMarshal.Read<uint>(buffer[24..]), MemoryMarshal.Read<ushort>(buffer[StatxModeOffset..]) & 0xFFF);
    }

    private const int StatxUid = 0x8, StatxGid = 0x10;

    /// <summary>The inode number of an open descriptor.</summary>
    public static ulong InodeOf(int fd, string pathForErrors)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (statx(fd, "", AT_EMPTY_PATH, STATX_INO, buffer) != 0)
            throw new IOException($"statx of {pathForErrors} failed: {LastError()}");
        return MemoryMarshal.Read<ulong>(buffer[StatxInodeOffset..]);
    }

    /// <summary>The inode number <paramref name="path"/> names now (a link is not followed); null when it names nothing.</summary>
    public static ulong? InodeOfPath(string path)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_INO, buffer) != 0) return null;
        return MemoryMarshal.Read<ulong>(buffer[StatxInodeOffset..]);
    }

    /// <summary>The file type bits of <paramref name="path"/> itself (a link is not followed); -1 when it cannot be read.</summary>
    public static int FileTypeOfLink(string path)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, buffer) != 0) return -1;
        return MemoryMarshal.Read<ushort>(buffer[StatxModeOffset..]) & S_IFMT;
    }
}
