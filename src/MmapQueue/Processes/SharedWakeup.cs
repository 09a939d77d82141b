using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Format;
using MmapQueues.Native;
using MmapQueues.Storage;

namespace MmapQueues.Processes;

/// <summary>
/// Wake-ups across processes through the queue directory's <c>notify</c> page (layout in <see cref="NotifyLayout"/>):
/// a reader thread in any process registers in the waiter count and sleeps in a shared futex on the word; the
/// writer, after a publish, loads the waiter count and, only when it is not zero, bumps the word and wakes.
/// </summary>
/// <remarks>
/// <para><b>Orderings.</b> (1) The reader's <c>Interlocked.Increment</c> of <c>waiters</c> pairs with the writer's
/// <c>Volatile.Read</c> of it in <see cref="AfterPublish"/>. (2) The writer's <c>Interlocked.Increment</c> of
/// <c>word</c> (a full fence, after the caller's release store of the record) pairs with the reader's
/// <c>Volatile.Read</c> of the word before it re-checks its condition, and with the kernel's compare in
/// <c>FUTEX_WAIT</c>: a bump between the reader's load and its sleep makes the sleep return at once.
/// (3) Nothing orders the writer's publish store before its load of <c>waiters</c> (no fence on the append
/// path, as in-process): a writer may see 0 while a reader that just registered does not yet see the record.
/// Every sleep is therefore bounded by <see cref="RecheckInterval"/>, which is the worst extra latency of that race.</para>
/// <para><b>A waiter that crashed</b> leaves <c>waiters</c> above zero, and the writer would pay a bump and a
/// <c>FUTEX_WAKE</c> per publish. Each reader process holds <c>flock(LOCK_SH)</c> on the file while it has it
/// open; when a wake finds nobody asleep, the writer (at most once per <see cref="RepairInterval"/>) tries
/// <c>LOCK_EX | LOCK_NB</c>: it succeeds only when no reader process has the file open, so every count left is a
/// dead one, and it resets the count to 0 under that lock.</para>
/// <para><b>Lifetime.</b> The owner disposes only after every <see cref="WaitUntil"/> on the instance returned:
/// the word is in the mapping that <see cref="Dispose"/> unmaps.</para>
/// </remarks>
internal sealed class SharedWakeup : IDisposable
{
    /// <summary>The longest one sleep lasts before the reader re-checks (bounds the race of remark 3): 10 ms.</summary>
    public static readonly TimeSpan RecheckInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>How often, at most, the writer tries to repair a waiter count that crashed readers left: 1 s.</summary>
    public static readonly TimeSpan RepairInterval = TimeSpan.FromSeconds(1);

    private readonly SafeFileHandle _file;
    private readonly MappedRegion _map;
    private readonly bool _reader;
    private long _wakeCalls;     // FUTEX_WAKE calls this instance made (tests prove the idle path makes none)
    private long _nextRepairTimestamp;

    private SharedWakeup(string path, SafeFileHandle file, MappedRegion map, bool reader)
    {
        Path = path;
        _file = file;
        _map = map;
        _reader = reader;
    }

    /// <summary>The notify file.</summary>
    public string Path { get; }

    /// <summary>Why the writer's open replaced a <c>notify</c> file that was not a notify page (null when it did not).</summary>
    public string? ReplacedBecause { get; private init; }

    /// <summary>FUTEX_WAKE system calls made by <see cref="AfterPublish"/> on this instance.</summary>
    public long WakeCalls => Volatile.Read(ref _wakeCalls);

    private ref int Waiters => ref MemoryMarshal.AsRef<int>(_map.Span.Slice(NotifyLayout.WaitersOffset, sizeof(int)));

    private ref int Word => ref MemoryMarshal.AsRef<int>(_map.Span.Slice(NotifyLayout.WordOffset, sizeof(int)));

    /// <summary>The waiter count as stored (tests and diagnostics).</summary>
    internal int WaitersForTests => Volatile.Read(ref Waiters);

    /// <summary>
    /// Opens (or creates, with <paramref name="fileMode"/>) <c>notify</c> in <paramref name="directory"/>, checks
    /// its length and header, and maps it. A <paramref name="reader"/> also takes <c>flock(LOCK_SH)</c> until disposed.
    /// </summary>
    /// <exception cref="QueueCorruptedException">A reader found a file that is not a notify page (file, offset, expected
    /// vs found); the writer replaces such a file instead (<see cref="ReplacedBecause"/>).</exception>
    /// <exception cref="UnauthorizedAccessException">No write access (a reader running as another user): poll instead.</exception>
    public static SharedWakeup Open(string directory, UnixFileMode fileMode, bool reader)
    {
        if (!Futex.Supported)
            throw new PlatformNotSupportedException($"Cross-process wake-ups need futex(2); its number on {RuntimeInformation.ProcessArchitecture} is not known.");
        string path = System.IO.Path.Combine(directory, NotifyLayout.FileName);
        SafeFileHandle file = QueueFiles.TryOpenExisting(path, write: true) ?? Create(path, fileMode);
        MappedRegion? map = null;
        try
        {
            Span<byte> header = stackalloc byte[NotifyLayout.HeaderLength];
            header.Clear();
            RandomAccess.Read(file, header, 0); // a short file leaves zeros here, and fails the length check first
            string? replacedBecause = null;
            if (!NotifyLayout.TryCheck(RandomAccess.GetLength(file), header, out FieldProblem p))
            {
                if (reader) throw QueueCorruptedException.At(path, p.Offset, p.Expected, p.Found);
                // The writer (it holds the queue's lock) replaces it: the page holds no durable state, only who waits
                // now, and a power cut can leave it empty (created, renamed, its data never synced). Readers still on
                // the old file wake by their bounded re-check until they open the queue again.
                replacedBecause = $"offset {p.Offset}: expected {p.Expected}, found {p.Found}";
                file.Dispose();
                file = Create(path, fileMode, replace: true);
            }
            map = MappedRegion.Map(file, NotifyLayout.Length, path);
            if (reader) LockShared(file, path);
            return new SharedWakeup(path, file, map, reader) { ReplacedBecause = replacedBecause };
        }
        catch
        {
            map?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writer side, after each publish: one plain load of the waiter count and nothing else when it is zero
    /// (no system call). Otherwise bumps the word and wakes every sleeper.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AfterPublish()
    {
        if (Volatile.Read(ref Waiters) > 0) WakeAll(); // pairs with the Interlocked.Increment in WaitUntil (remark 1)
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WakeAll()
    {
        Interlocked.Increment(ref Word); // full fence; pairs with the Volatile.Read of the word in WaitUntil (remark 2)
        Interlocked.Increment(ref _wakeCalls);
        if (Futex.Wake(ref Word, int.MaxValue, Path) == 0 && !_reader) RepairIfNoReaderProcess();
    }

    /// <summary>
    /// Reader side: returns true as soon as <paramref name="ready"/> holds, false when <paramref name="timeout"/>
    /// passed first. Sleeps in the futex between checks, each sleep at most <paramref name="recheckInterval"/>
    /// (default <see cref="RecheckInterval"/>; tests stretch it to prove that the wake, not the re-check, ended a sleep).
    /// </summary>
    public bool WaitUntil(Func<bool> ready, TimeSpan timeout, CancellationToken cancellationToken = default, TimeSpan? recheckInterval = null)
    {
        TimeSpan recheck = recheckInterval ?? RecheckInterval;
        if (!_reader) throw new InvalidOperationException($"{Path} was opened for the writer; open it as a reader to wait.");
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        Interlocked.Increment(ref Waiters); // full fence before the loads below; pairs with AfterPublish's load (remark 1)
        try
        {
            while (true)
            {
                int seen = Volatile.Read(ref Word); // before the check; pairs with WakeAll's increment (remark 2)
                if (ready()) return true;
                cancellationToken.ThrowIfCancellationRequested();
                TimeSpan left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                if (left <= TimeSpan.Zero) return false;
                int rc = Futex.Wait(ref Word, seen, left < recheck ? left : recheck);
                if (rc is not (0 or Libc.EAGAIN or Libc.EINTR or Futex.ETIMEDOUT))
                    throw new IOException($"futex wait on {Path} failed: errno {rc}: {Marshal.GetPInvokeErrorMessage(rc)}");
            }
        }
        finally
        {
            Interlocked.Decrement(ref Waiters);
        }
    }

    private void RepairIfNoReaderProcess()
    {
        long now = Stopwatch.GetTimestamp();
        if (now < _nextRepairTimestamp) return;
        _nextRepairTimestamp = now + (long)(RepairInterval.TotalSeconds * Stopwatch.Frequency);
        int fd = (int)_file.DangerousGetHandle();
        if (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0) return; // a reader process has it open: its count may be live
        try
        {
            Interlocked.Exchange(ref Waiters, 0); // every registration left belongs to a process that is gone
        }
        finally
        {
            Libc.flock(fd, Libc.LOCK_UN);
        }
    }

    private static void LockShared(SafeFileHandle file, string path)
    {
        while (Libc.flock((int)file.DangerousGetHandle(), Libc.LOCK_SH) != 0)
            if (Libc.LastErrno != Libc.EINTR) throw new IOException($"flock(LOCK_SH) of {path} failed: {Libc.LastError()}");
    }

    /// <summary>A whole page written under a temporary name, then renamed in unless another process was first.</summary>
    private static SafeFileHandle Create(string path, UnixFileMode fileMode, bool replace = false)
    {
        var (tmp, tmpPath) = QueueFiles.CreateTemporary(path, fileMode);
        try
        {
            using (tmp)
            {
                byte[] page = new byte[NotifyLayout.Length];
                NotifyLayout.Write(page);
                RandomAccess.Write(tmp, page, 0);
            }
            if (replace) QueueFiles.Rename(tmpPath, path, replace: true);
            else if (!QueueFiles.TryRenameNoReplace(tmpPath, path)) QueueFiles.Delete(tmpPath);
        }
        catch
        {
            QueueFiles.Delete(tmpPath);
            throw;
        }
        return QueueFiles.OpenExisting(path, write: true);
    }

    public void Dispose()
    {
        _map.Dispose();
        _file.Dispose(); // releases a reader's LOCK_SH
    }

    /// <summary>
    /// The writer's close: the file is closed and its mapping replaced by a private zero page (no waiter), which
    /// stays mapped for the life of the process (4 KiB per close): a producer preempted for any time between its
    /// publish and <see cref="AfterPublish"/>'s load when the queue closed must never fault. An unmap after a grace
    /// period (as before) would leave such a producer reading unmapped memory.
    /// </summary>
    public void CloseForPublishers()
    {
        _map.DetachFromFile(Path); // never disposed: the zero page is what a late AfterPublish reads
        _file.Dispose();
    }
}
