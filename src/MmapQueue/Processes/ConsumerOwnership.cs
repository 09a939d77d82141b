using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Format;
using MmapQueues.Native;
using MmapQueues.Storage;

namespace MmapQueues.Processes;

/// <summary>
/// Ownership of a named consumer across processes: <c>flock(LOCK_EX)</c> on <c>consumers/{hash}.lock</c> of the queue
/// directory, whose text names the holder (pid, process name, user). One process at a time owns a name, so its
/// commits never race another process's; the kernel drops the lock of a process that crashed.
/// </summary>
/// <remarks>
/// The lock files are never removed: unlinking a lock file lets a process that opened the old file before the
/// unlink lock it while a third locks a new file of the same name, and two would own the consumer. The name
/// is hashed (SHA-256, 32 hex digits) because a consumer name may be 255 bytes of any UTF-8, more than a file
/// name can hold; the in-process one-holder rule (<see cref="ConsumerRegistry"/>) still applies beside it.
/// </remarks>
internal sealed class ConsumerOwnership : IDisposable
{
    /// <summary>The subdirectory of the queue directory that holds the ownership locks.</summary>
    public const string DirectoryName = "consumers";

    private readonly SafeFileHandle _file;

    private ConsumerOwnership(string name, string path, SafeFileHandle file)
    {
        Name = name;
        Path = path;
        _file = file;
    }

    /// <summary>The consumer owned.</summary>
    public string Name { get; }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>The lock file of <paramref name="consumerName"/> in <paramref name="queueDirectory"/>.</summary>
    public static string LockPathFor(string queueDirectory, string consumerName)
    {
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(consumerName));
        return System.IO.Path.Combine(queueDirectory, DirectoryName, Convert.ToHexStringLower(hash, 0, 16) + ".lock");
    }

    /// <summary>Makes this process the owner of <paramref name="consumerName"/> until disposed (or until it ends).</summary>
    /// <exception cref="InvalidOperationException">Another process (or another claim in this one) owns it; the message names the holder.</exception>
    public static ConsumerOwnership Claim(string queueDirectory, string consumerName, UnixFileMode fileMode)
    {
        CursorFile.ValidateName(consumerName, nameof(consumerName));
        QueueFiles.CreateDirectory(System.IO.Path.Combine(queueDirectory, DirectoryName), fileMode);
        string path = LockPathFor(queueDirectory, consumerName);
        SafeFileHandle file = QueueFiles.OpenOrCreate(path, fileMode);
        try
        {
            if (!TryLockOrWaitOutProbe(file, path))
                throw new InvalidOperationException($"Consumer '{consumerName}' of queue {queueDirectory} is owned by {ReadHolder(file, path)} " +
                                                    $"(lock file {path}); one process at a time owns a named consumer: stop that reader or use another name.");
            WriteHolder(file, path, HolderText.OfThisProcessUtf8);
            return new ConsumerOwnership(consumerName, path, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // An mmapq info probe holds the lock for a moment; the bound is long enough for a probe descheduled on a loaded
    // machine, short enough that a claim refused because the owner is starting or ending still fails promptly.
    private static readonly TimeSpan ProbeWait = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Takes the lock; when it is held and its holder text is empty (an owner writes its text at once, so that is a
    /// <see cref="CurrentHolder"/> probe, or an owner starting or ending), tries again for up to half a second.
    /// </summary>
    private static bool TryLockOrWaitOutProbe(SafeFileHandle file, string path)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            if (FileLocks.TryLockExclusive(file, path)) return true;
            if (RandomAccess.GetLength(file) != 0 || System.Diagnostics.Stopwatch.GetElapsedTime(started) >= ProbeWait) return false;
            Thread.Sleep(1);
        }
    }

    /// <summary>Who owns <paramref name="consumerName"/> now, as safe text; null when no process does (for <c>mmapq info</c>).</summary>
    public static string? CurrentHolder(string queueDirectory, string consumerName)
    {
        string path = LockPathFor(queueDirectory, consumerName);
        using SafeFileHandle? file = QueueFiles.TryOpenExisting(path, write: false);
        if (file is null || FileLocks.TryLockExclusive(file, path)) return null; // closing the probe releases its lock
        return ReadHolder(file, path);
    }

    private static string ReadHolder(SafeFileHandle file, string path)
    {
        Span<byte> buffer = stackalloc byte[HolderText.MaxBytes];
        int n = RandomAccess.Read(file, buffer, 0);
        string text = HolderText.Sanitize(buffer[..n]);
        return n == 0 ? $"a process that is starting or recorded nothing {text}" : $"process {text}";
    }

    private static void WriteHolder(SafeFileHandle file, string path, ReadOnlySpan<byte> holder)
    {
        if (Libc.ftruncate((int)file.DangerousGetHandle(), 0) != 0) throw new IOException($"ftruncate of {path} failed: {Libc.LastError()}");
        if (!holder.IsEmpty) RandomAccess.Write(file, holder, 0);
    }

    /// <summary>Clears the holder text, then closes the file, which releases the lock.</summary>
    public void Dispose()
    {
        if (_file.IsClosed) return;
        try
        {
            WriteHolder(_file, Path, default);
        }
        finally
        {
            _file.Dispose();
        }
    }
}
