using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Processes;

/// <summary>
/// A reader process's lease (layout in <see cref="LeaseLayout"/>): a file in the queue directory's <c>readers/</c>
/// that names the lowest sequence the reader may still read and who holds it, <c>flock</c>'ed for as long as
/// the process lives. The writer's retention (<see cref="ReaderLeases"/>) keeps every segment a live lease
/// still needs and removes the leases of processes that are gone.
/// </summary>
/// <remarks>
/// A reader registers before it opens a segment and checks afterwards that the segment still exists: a
/// retention pass that listed the leases just before the registration may have deleted it. Not thread-safe;
/// one owner calls <see cref="Advance"/>.
/// </remarks>
internal sealed class ReaderLease : IDisposable
{
    /// <summary>The subdirectory of the queue directory that holds the leases.</summary>
    public const string DirectoryName = "readers";

    private readonly SafeFileHandle _file;
    private readonly byte[] _holder = HolderText.OfThisProcessUtf8;
    private bool _disposed;

    private ReaderLease(string path, SafeFileHandle file, long lowestSequence)
    {
        Path = path;
        _file = file;
        LowestSequence = lowestSequence;
    }

    /// <summary>The lease file.</summary>
    public string Path { get; }

    /// <summary>The lowest sequence this reader may still read, as last written.</summary>
    public long LowestSequence { get; private set; }

    /// <summary>
    /// Registers a lease in <paramref name="queueDirectory"/>'s <c>readers/</c> (created with the mode that goes with
    /// <paramref name="fileMode"/>): written and locked under a temporary name, then renamed into place, so the
    /// writer never finds a lease that is not locked.
    /// </summary>
    /// <remarks>
    /// The writer's scan removes a temporary it can lock (a registration whose process died before it finished);
    /// it may also catch a live one between its creation and its lock. The registration then finds its temporary
    /// gone (or locked by the scan) and starts again under a new name, up to <see cref="RegisterAttempts"/> times.
    /// </remarks>
    public static ReaderLease Register(string queueDirectory, long lowestSequence, UnixFileMode fileMode)
    {
        string dir = System.IO.Path.Combine(queueDirectory, DirectoryName);
        QueueFiles.CreateDirectory(dir, fileMode);
        for (int attempt = 1; ; attempt++)
        {
            string path = System.IO.Path.Combine(dir, $"{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(16, lowercase: true)}{LeaseLayout.Extension}");
            var (file, tmp) = QueueFiles.CreateTemporary(path, fileMode);
            try
            {
                if (FileLocks.TryLockExclusive(file, tmp))
                {
                    var lease = new ReaderLease(path, file, lowestSequence);
                    lease.WriteWhole();
                    if (Native.Libc.FileTypeOfLink(tmp) != -1) // still ours: the scan passes a locked temporary by
                    {
                        QueueFiles.Rename(tmp, path, replace: false);
                        return lease;
                    }
                }
            }
            catch
            {
                QueueFiles.Delete(tmp);
                file.Dispose();
                throw;
            }
            QueueFiles.Delete(tmp); // the writer's scan locked or removed it: not a lease any more
            file.Dispose();
            if (attempt == RegisterAttempts)
                throw new IOException($"A reader lease in {dir} could not be registered: the writer's scan took its temporary file {RegisterAttempts} times in a row.");
        }
    }

    /// <summary>How many times <see cref="Register"/> starts again when the writer's scan took its temporary file.</summary>
    private const int RegisterAttempts = 5;

    /// <summary>Moves the lease to <paramref name="lowestSequence"/> (one write of the header; no fsync).</summary>
    public void Advance(long lowestSequence)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Span<byte> header = stackalloc byte[LeaseLayout.HeaderLength];
        LeaseLayout.WriteHeader(header, lowestSequence, _holder);
        RandomAccess.Write(_file, header, 0);
        LowestSequence = lowestSequence;
    }

    private void WriteWhole()
    {
        byte[] whole = new byte[LeaseLayout.HeaderLength + _holder.Length];
        LeaseLayout.WriteHeader(whole, LowestSequence, _holder);
        _holder.CopyTo(whole, LeaseLayout.HeaderLength);
        RandomAccess.Write(_file, whole, 0);
    }

    /// <summary>Removes the lease file, then closes it (which releases the lock).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            QueueFiles.Delete(Path);
        }
        finally
        {
            _file.Dispose();
        }
    }
}
