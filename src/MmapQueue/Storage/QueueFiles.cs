using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Native;

namespace MmapQueues.Storage;

/// <summary>
/// Every open, create, rename and unlink of a file in a queue directory, done so that a local user who
/// plants a link there cannot redirect it: each call opens the queue directory itself with
/// <c>O_DIRECTORY | O_NOFOLLOW</c> and works relative to that descriptor (<c>openat</c>, <c>renameat</c>,
/// <c>unlinkat</c>) with <c>O_NOFOLLOW</c>; a file must be a regular file; temporary files are created
/// exclusively (<c>O_CREAT | O_EXCL</c>) under a random name, then renamed into place.
/// </summary>
/// <remarks>
/// The last component of the queue path must be a real directory (a link there is refused); its parents may
/// be links, since whoever controls a parent controls the whole queue anyway. Paths are full paths whose
/// directory is the queue directory, as everywhere else in the library, so errors name the file. A planted
/// link or a non-regular file is reported as a <see cref="QueueCorruptedException"/> ("expected a regular
/// file, found a symbolic link"), and the link's target is never opened.
/// </remarks>
internal static class QueueFiles
{
    /// <summary>The default mode of queue files: 0600, the owner only.</summary>
    public const UnixFileMode DefaultFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The mode bits a file may be given: read and write for the owner, read for group and others.</summary>
    public const UnixFileMode AllowedFileModes = DefaultFileMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private const string TemporarySuffix = ".tmp";

    /// <summary>The directory mode that goes with <paramref name="fileMode"/>: 0700 plus search for each class that may read.</summary>
    public static UnixFileMode DirectoryModeFor(UnixFileMode fileMode) =>
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | (fileMode.HasFlag(UnixFileMode.GroupRead) ? UnixFileMode.GroupRead | UnixFileMode.GroupExecute : 0)
        | (fileMode.HasFlag(UnixFileMode.OtherRead) ? UnixFileMode.OtherRead | UnixFileMode.OtherExecute : 0);

    /// <summary>
    /// Creates the queue directory (and missing parents) with the mode that goes with <paramref name="fileMode"/>,
    /// exactly, whatever the umask. An existing directory keeps its mode, but must not be a link.
    /// </summary>
    public static void CreateDirectory(string directory, UnixFileMode fileMode)
    {
        directory = Path.TrimEndingDirectorySeparator(directory);
        UnixFileMode mode = DirectoryModeFor(fileMode);
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("MmapQueue runs on Linux.");
        bool existed = Path.Exists(directory);
        if (!existed) Directory.CreateDirectory(directory, mode);
        using var dir = DirectoryFd.Open(directory);
        if (!existed && Libc.fchmod(dir.Fd, (uint)mode) != 0)
            throw new IOException($"chmod of queue directory {directory} to {Octal(mode)} failed: {Libc.LastError()}");
        if (!existed) ReaderFileOwners.Apply(dir.Fd, directory); // a root reader's readers/ or consumers/: the writer's user
    }

    /// <summary>Opens an existing file of the queue directory; <see cref="FileNotFoundException"/> when it is missing.</summary>
    public static SafeFileHandle OpenExisting(string path, bool write) =>
        TryOpenExisting(path, write) ?? throw new FileNotFoundException($"Queue file {path} does not exist.", path);

    /// <summary>Opens an existing file of the queue directory; null when it is missing.</summary>
    public static SafeFileHandle? TryOpenExisting(string path, bool write)
    {
        using var dir = DirectoryFd.Open(Path.GetDirectoryName(path)!);
        return OpenAt(dir, path, write ? Libc.O_RDWR : Libc.O_RDONLY, 0, missingIsNull: true);
    }

    /// <summary>
    /// Opens an existing file of the queue directory for asynchronous reading, as a <see cref="FileStream"/>
    /// (what <c>Socket.SendPacketsAsync</c>'s file element requires). The file is opened and checked as
    /// <see cref="OpenExisting"/> does, then reopened through <c>/proc/self/fd</c>: that names the inode
    /// already opened, not a path, so no link planted in the meantime can redirect it.
    /// </summary>
    public static FileStream OpenForAsyncRead(string path)
    {
        using SafeFileHandle checkedFile = OpenExisting(path, write: false);
        string self = $"/proc/self/fd/{checkedFile.DangerousGetHandle()}";
        return new FileStream(self, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous);
    }

    /// <summary>The last write time of a file of the queue directory (opened without following a link); null when it is missing.</summary>
    public static DateTime? TryGetLastWriteTimeUtc(string path)
    {
        using SafeFileHandle? file = TryOpenExisting(path, write: false);
        return file is null ? null : File.GetLastWriteTimeUtc(file);
    }

    /// <summary>Reads a whole file of the queue directory (at most <paramref name="maxBytes"/>); null when it is missing.</summary>
    public static byte[]? TryReadAll(string path, int maxBytes)
    {
        using SafeFileHandle? file = TryOpenExisting(path, write: false);
        return file is null ? null : ReadAll(file, path, maxBytes);
    }

    /// <summary>Reads the whole of an open file; a file longer than <paramref name="maxBytes"/> is refused.</summary>
    public static byte[] ReadAll(SafeFileHandle file, string path, int maxBytes)
    {
        long length = RandomAccess.GetLength(file);
        if (length > maxBytes)
            throw QueueCorruptedException.At(path, 0, $"a file of at most {maxBytes} bytes", $"{length} bytes");
        byte[] bytes = new byte[length];
        int read = 0;
        while (read < bytes.Length)
        {
            int n = RandomAccess.Read(file, bytes.AsSpan(read), read);
            if (n == 0) break;
            read += n;
        }
        return read == bytes.Length ? bytes : bytes[..read];
    }

    /// <summary>Opens a file read-write, creating it with <paramref name="mode"/> when missing (the lock file).</summary>
    public static SafeFileHandle OpenOrCreate(string path, UnixFileMode mode)
    {
        using var dir = DirectoryFd.Open(Path.GetDirectoryName(path)!);
        SafeFileHandle? file = OpenAt(dir, path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL, mode, missingIsNull: false, existingIsNull: true);
        return file ?? OpenAt(dir, path, Libc.O_RDWR, 0, missingIsNull: false)!;
    }

    /// <summary>
    /// Creates a new, empty file named <c>{name of <paramref name="finalPath"/>}.{random}.tmp</c> beside it,
    /// exclusively, with <paramref name="mode"/>; the caller fills it and renames it with <see cref="Rename"/>.
    /// </summary>
    public static (SafeFileHandle Handle, string Path) CreateTemporary(string finalPath, UnixFileMode mode)
    {
        using var dir = DirectoryFd.Open(Path.GetDirectoryName(finalPath)!);
        while (true)
        {
            string tmp = $"{finalPath}.{RandomNumberGenerator.GetHexString(16, lowercase: true)}{TemporarySuffix}";
            SafeFileHandle? file = OpenAt(dir, tmp, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL, mode, missingIsNull: false, existingIsNull: true);
            if (file is not null) return (file, tmp);
        }
    }

    /// <summary>
    /// Writes <paramref name="bytes"/> as the whole new content of <paramref name="path"/>, atomically: a
    /// temporary file (<see cref="CreateTemporary"/>), written, fsynced, renamed over the old one, and the
    /// directory fsynced. With <paramref name="durable"/> false (a cache file) the two fsyncs are skipped:
    /// a crash then leaves the old file, the new one, or an empty one, never a mix.
    /// </summary>
    public static void ReplaceAtomically(string path, ReadOnlySpan<byte> bytes, UnixFileMode mode, bool durable)
    {
        var (file, tmp) = CreateTemporary(path, mode);
        try
        {
            using (file)
            {
                RandomAccess.Write(file, bytes, 0);
                if (durable && Libc.fsync((int)file.DangerousGetHandle()) != 0)
                    throw new IOException($"fsync of {tmp} failed: {Libc.LastError()}");
            }
            Rename(tmp, path, replace: true);
        }
        catch
        {
            Delete(tmp);
            throw;
        }
        if (durable) FsyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>Renames a file within the queue directory; without <paramref name="replace"/> an existing target is an error.</summary>
    public static void Rename(string from, string to, bool replace)
    {
        using var dir = DirectoryFd.Open(Path.GetDirectoryName(to)!);
        string a = Path.GetFileName(from), b = Path.GetFileName(to);
        int rc = replace ? Libc.renameat(dir.Fd, a, dir.Fd, b) : Libc.renameat2(dir.Fd, a, dir.Fd, b, Libc.RENAME_NOREPLACE);
        if (rc != 0)
            throw new IOException($"rename of {from} to {to} failed: {Libc.LastError()}");
    }

    /// <summary>Renames without replacing; false when <paramref name="to"/> exists already (another process made it first).</summary>
    public static bool TryRenameNoReplace(string from, string to)
    {
        using var dir = DirectoryFd.Open(Path.GetDirectoryName(to)!);
        if (Libc.renameat2(dir.Fd, Path.GetFileName(from), dir.Fd, Path.GetFileName(to), Libc.RENAME_NOREPLACE) == 0) return true;
        if (Libc.LastErrno == Libc.EEXIST) return false;
        throw new IOException($"rename of {from} to {to} failed: {Libc.LastError()}");
    }

    /// <summary>
    /// Renames <paramref name="from"/> to a new temporary name <c>{name of <paramref name="stemPath"/>}.{random}.tmp</c>
    /// beside it (never replacing an existing entry) and returns that name: a segment becoming a recycled spare.
    /// </summary>
    public static string RenameToTemporary(string from, string stemPath)
    {
        while (true)
        {
            string tmp = $"{stemPath}.{RandomNumberGenerator.GetHexString(16, lowercase: true)}{TemporarySuffix}";
            if (TryRenameNoReplace(from, tmp)) return tmp;
        }
    }

    /// <summary>Removes a file (a link itself, never its target); a missing file is fine.</summary>
    public static void Delete(string path)
    {
        using var dir = DirectoryFd.Open(Path.GetDirectoryName(path)!);
        if (Libc.unlinkat(dir.Fd, Path.GetFileName(path), 0) != 0 && Libc.LastErrno != Libc.ENOENT)
            throw new IOException($"unlink of {path} failed: {Libc.LastError()}");
    }

    /// <summary>
    /// Removes every temporary file a crash left behind (the writer calls it once it holds the lock): only
    /// names this library creates, so another entry that merely ends in <c>.tmp</c> is left alone (a directory
    /// of that name would otherwise stop the queue from opening).
    /// </summary>
    public static void DeleteTemporaries(string directory)
    {
        foreach (string tmp in Directory.EnumerateFileSystemEntries(directory, "*" + TemporarySuffix))
            if (IsTemporaryName(Path.GetFileName(tmp))) Delete(tmp);
    }

    /// <summary>
    /// <c>{name}.{16 hex digits}.tmp</c> (<see cref="CreateTemporary"/>), or a name versions before it used:
    /// <c>queue.meta.tmp</c>, <c>cursors.tmp</c>, <c>next.seg.tmp</c>, <c>{segment}.idx.{thread}.tmp</c>.
    /// </summary>
    internal static bool IsTemporaryName(string name)
    {
        if (!name.EndsWith(TemporarySuffix, StringComparison.Ordinal)) return false;
        string stem = name[..^TemporarySuffix.Length];
        if (stem is "queue.meta" or "cursors" or "next.seg") return true;
        int dot = stem.LastIndexOf('.');
        if (dot <= 0) return false;
        ReadOnlySpan<char> tail = stem.AsSpan(dot + 1);
        return (tail.Length == 16 && !tail.ContainsAnyExcept("0123456789abcdef"))
            || (stem.AsSpan(0, dot).EndsWith(Format.IndexLayout.Extension, StringComparison.Ordinal) && tail.Length > 0 && !tail.ContainsAnyExcept("0123456789"));
    }

    /// <summary>fsync the queue directory so that entries created, renamed or removed in it survive power loss.</summary>
    public static void FsyncDirectory(string directory)
    {
        using var dir = DirectoryFd.Open(directory);
        if (Libc.fsync(dir.Fd) != 0) throw new IOException($"fsync of directory {directory} failed: {Libc.LastError()}");
    }

    private static SafeFileHandle? OpenAt(DirectoryFd dir, string path, int flags, UnixFileMode mode, bool missingIsNull, bool existingIsNull = false)
    {
        // O_NONBLOCK so that a planted FIFO cannot hang the open; cleared again once the file proved regular.
        int fd = Libc.openat(dir.Fd, Path.GetFileName(path), flags | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NONBLOCK, (int)mode);
        if (fd < 0)
        {
            int errno = Libc.LastErrno;
            if (errno == Libc.ENOENT && missingIsNull) return null;
            if (errno == Libc.EEXIST && existingIsNull) return null;
            if (errno == Libc.ELOOP) throw NotRegular(path, "a symbolic link (not followed; its target was not opened)");
            string why = Libc.LastError();
            if (errno == Libc.ENOENT) throw new FileNotFoundException($"Queue file {path} does not exist.", path);
            if (errno is 1 or 13) throw new UnauthorizedAccessException($"open of {path} failed: {why}");
            throw new IOException($"open of {path} failed: {why}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            int type = Libc.FileModeOf(fd, path) & Libc.S_IFMT;
            if (type != Libc.S_IFREG) throw NotRegular(path, TypeName(type));
            if ((flags & Libc.O_CREAT) != 0 && Libc.fchmod(fd, (uint)mode) != 0) // exactly the mode asked for, whatever the umask
                throw new IOException($"chmod of {path} to {Octal(mode)} failed: {Libc.LastError()}");
            if ((flags & Libc.O_CREAT) != 0) ReaderFileOwners.Apply(fd, path); // a root reader's file: the writer's user
            int fl = Libc.fcntl(fd, Libc.F_GETFL, 0);
            if (fl < 0 || Libc.fcntl(fd, Libc.F_SETFL, fl & ~Libc.O_NONBLOCK) != 0)
                throw new IOException($"fcntl of {path} failed: {Libc.LastError()}");
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static QueueCorruptedException NotRegular(string path, string found) =>
        QueueCorruptedException.At(path, 0, "a regular file (MmapQueue follows no link inside a queue directory)", found);

    private static string TypeName(int type) => type switch
    {
        Libc.S_IFDIR => "a directory",
        Libc.S_IFIFO => "a FIFO",
        Libc.S_IFSOCK => "a socket",
        Libc.S_IFCHR or Libc.S_IFBLK => "a device",
        _ => $"file type 0{Convert.ToString(type, 8)}",
    };

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8);

    /// <summary>The queue directory, opened for one operation: the last component must not be a link.</summary>
    private readonly struct DirectoryFd : IDisposable
    {
        public readonly int Fd;

        private DirectoryFd(int fd) => Fd = fd;

        public static DirectoryFd Open(string directory)
        {
            directory = Path.TrimEndingDirectorySeparator(directory);
            int fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (fd >= 0) return new DirectoryFd(fd);
            int errno = Libc.LastErrno;
            string why = Libc.LastError();
            if (errno == Libc.ENOENT) throw new DirectoryNotFoundException($"Queue directory {directory} does not exist.");
            if (errno is Libc.ELOOP or Libc.ENOTDIR) // O_DIRECTORY | O_NOFOLLOW on a link gives either
                throw new IOException($"Queue directory {directory}: expected a directory, found " +
                                      (Libc.FileTypeOfLink(directory) == Libc.S_IFLNK
                                          ? "a symbolic link. MmapQueue does not follow a link in the last component of the queue path " +
                                            "(parents may be links); give the link's target."
                                          : $"something else ({why})."));
            if (errno is 1 or 13) throw new UnauthorizedAccessException($"open of queue directory {directory} failed: {why}");
            throw new IOException($"open of queue directory {directory} failed: {why}");
        }

        public void Dispose() => Libc.close(Fd);
    }
}
