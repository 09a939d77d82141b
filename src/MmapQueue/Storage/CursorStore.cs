using Microsoft.Win32.SafeHandles;
using MmapQueues.Format;
using MmapQueues.Native;

namespace MmapQueues.Storage;

/// <summary>
/// The cursors file at run time: named consumers' committed sequences and the retention floor, written
/// double-buffered (format and torn-write argument in <see cref="CursorsLayout"/>).
/// </summary>
/// <remarks>
/// One lock, <see cref="_lock"/>, serializes writers. Readers outside it (retention) use
/// <see cref="Snapshot"/>: an immutable state published with <c>Volatile.Write</c> only after its slot
/// was fdatasync'ed, so what retention sees is always durable.
/// <para>Opened <c>shared</c> (committers in several processes), every change also takes <c>flock(LOCK_EX)</c> on
/// <c>cursors.lock</c> and, under it, re-reads the file by path (another process may have written a slot, or
/// replaced the file when it grew) before it applies the change on top; <see cref="Refresh"/> re-reads without a
/// change, read-only and without the lock. Without it, this process's cached state would overwrite the other processes' commits.</para>
/// </remarks>
internal sealed class CursorStore : IDisposable
{
    private readonly object _lock = new();
    private readonly string _path;
    private readonly string _directory;
    private readonly Guid _queueId;
    private readonly UnixFileMode _fileMode;
    private SafeFileHandle? _file; // open from the first write on; one descriptor for the queue's life
    private int _slotSize;
    private bool _disposed;        // under _lock: set by Dispose, after which no write reopens the file
    private CursorState _state;    // replaced, never mutated; Volatile pair: Write in Persist and Reload, Read in Snapshot
    private bool _shared;          // set once at open: serialize with other processes through LockName
    private TimeSpan? _lockWait;   // set once at open: the writer's bound on waiting for LockName (FileLocks.LockWithin); null waits

    /// <summary>The lock file that serializes committers in several processes (<c>shared</c> stores only).</summary>
    public const string LockName = "cursors.lock";

    private CursorStore(string directory, string path, Guid queueId, UnixFileMode fileMode, CursorState state, int slotSize)
    {
        _fileMode = fileMode;
        _directory = directory;
        _path = path;
        _queueId = queueId;
        _state = state;
        _slotSize = slotSize;
    }

    /// <summary>
    /// Loads the cursors file, or <paramref name="fileName"/>, another file of the same format (none yet means
    /// no consumers and no floor); a file it creates later gets <paramref name="fileMode"/>. A grow that crashed
    /// before its rename left a temporary file, which the queue's leftover sweep removes: the old file still
    /// holds the state. A <paramref name="shared"/> store of the writer passes <paramref name="lockWait"/>: a change
    /// then waits at most that long for <c>cursors.lock</c> (a reader process may hold it) and throws
    /// <see cref="Processes.LockWaitTimeoutException"/> after.
    /// </summary>
    public static CursorStore Open(string directory, Guid queueId, UnixFileMode fileMode = QueueFiles.DefaultFileMode,
        string fileName = SegmentNames.CursorsName, bool shared = false, TimeSpan? lockWait = null)
    {
        string path = Path.Combine(directory, fileName);
        if (shared)
        {
            var store = new CursorStore(directory, path, queueId, fileMode, CursorState.Empty, 0) { _shared = true, _lockWait = lockWait };
            store.Refresh();
            return store;
        }
        SafeFileHandle? file = QueueFiles.TryOpenExisting(path, write: true);
        if (file is null) return new CursorStore(directory, path, queueId, fileMode, CursorState.Empty, 0);
        try
        {
            byte[] bytes = QueueFiles.ReadAll(file, path, 2 * CursorFile.MaxSlotSize);
            CursorState state = CursorFile.Decode(bytes, queueId, path);
            return new CursorStore(directory, path, queueId, fileMode, state, bytes.Length / 2) { _file = file };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The last durable state. Lock-free; pairs with the <c>Volatile.Write</c> in <see cref="PersistUnderCursorLock"/>.</summary>
    public CursorState Snapshot => Volatile.Read(ref _state);

    /// <summary>Makes <paramref name="sequence"/> the committed position of <paramref name="name"/>, durably.</summary>
    public void Commit(string name, long sequence) => Update(s => WithCommitted(s, name, sequence, raiseOnly: false));

    /// <summary>
    /// Raises the committed position of <paramref name="name"/> to <paramref name="sequence"/>, durably, never
    /// lowering it: the maximum is taken against the state re-read under the lock (another process may have
    /// raised it meanwhile).
    /// </summary>
    public void CommitAtLeast(string name, long sequence) => Update(s => WithCommitted(s, name, sequence, raiseOnly: true));

    /// <summary><paramref name="s"/> with <paramref name="name"/> at <paramref name="sequence"/>, or null when nothing changes.</summary>
    private static CursorState? WithCommitted(CursorState s, string name, long sequence, bool raiseOnly)
    {
        if (s.Committed.TryGetValue(name, out long old) && (old == sequence || (raiseOnly && old > sequence))) return null;
        var d = new Dictionary<string, long>(s.Committed, StringComparer.Ordinal) { [name] = sequence };
        return s with { Committed = d };
    }

    /// <summary>Forgets a named consumer, durably. Returns false if it did not exist.</summary>
    public bool Remove(string name)
    {
        bool removed = false;
        Update(s =>
        {
            if (!s.Committed.ContainsKey(name)) return null;
            removed = true;
            var d = new Dictionary<string, long>(s.Committed, StringComparer.Ordinal);
            d.Remove(name);
            return s with { Committed = d };
        });
        return removed;
    }

    /// <summary>Raises the retention floor durably; called before the segments below it are deleted.</summary>
    public void RaiseFloor(long retainedFrom) => Update(s => s.RetainedFrom >= retainedFrom ? null : s with { RetainedFrom = retainedFrom });

    private void Update(Func<CursorState, CursorState?> change)
    {
        lock (_lock)
        {
            // A Commit that raced the queue's Dispose: writing now would recreate the file after the directory
            // lock was released (and leak its descriptor).
            if (_disposed) throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed; the cursors file {_path} is closed.");
            using SafeFileHandle? processLock = _shared ? LockAcrossProcesses() : null;
            if (_shared) ReloadUnderLocks();
            CursorState? next = change(_state);
            if (next is null) return;
            PersistUnderCursorLock(next with { Generation = _state.Generation + 1 });
        }
    }

    /// <summary>
    /// Shared stores: re-reads the file, so <see cref="Snapshot"/> shows every process's commits. Read-only and
    /// without <c>cursors.lock</c>: a read-only open needs no write access and creates nothing (a missing file is
    /// no consumers yet). Safe without the lock: a slot is written in place only into the slot that does not hold
    /// the current generation and each slot carries a CRC, so a read that meets a write half-done still finds the
    /// other, older slot whole; a grow replaces the file by a rename, so a read sees the old file or the new one.
    /// A read that met two writes in a row (both slots torn) is retried. The state never moves back to an older
    /// generation than this process already saw.
    /// </summary>
    public void Refresh()
    {
        lock (_lock)
        {
            if (_disposed) throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed; the cursors file {_path} is closed.");
            for (int attempt = 1; ; attempt++)
            {
                using SafeFileHandle? file = QueueFiles.TryOpenExisting(_path, write: false);
                if (file is null) return; // nobody wrote one yet: the state stays what it was
                byte[] bytes = QueueFiles.ReadAll(file, _path, 2 * CursorFile.MaxSlotSize);
                CursorState state;
                try
                {
                    state = CursorFile.Decode(bytes, _queueId, _path);
                }
                catch (QueueCorruptedException) when (attempt < RefreshAttempts)
                {
                    Thread.Sleep(1); // both slots torn: two commits of other processes met this read
                    continue;
                }
                if (state.Generation >= _state.Generation) Volatile.Write(ref _state, state); // pairs with Volatile.Read in Snapshot
                return;
            }
        }
    }

    private const int RefreshAttempts = 3;

    /// <summary>
    /// Runs <paramref name="action"/> while no committer in any process is inside a commit (shared stores take
    /// <c>cursors.lock</c>): the writer's sweep of leftover temporaries at open must not delete the temporary of a
    /// reader process's commit that is replacing a growing file.
    /// </summary>
    public void UnderCommitLock(Action action)
    {
        lock (_lock)
        {
            using SafeFileHandle? processLock = _shared ? LockAcrossProcesses() : null;
            action();
        }
    }

    private SafeFileHandle LockAcrossProcesses()
    {
        string path = Path.Combine(_directory, LockName);
        SafeFileHandle file;
        try
        {
            file = QueueFiles.OpenOrCreate(path, _fileMode);
        }
        catch (UnauthorizedAccessException) when (QueueFiles.TryOpenExisting(path, write: false) is { } readOnly)
        {
            file = readOnly; // another user's file: flock works on a read-only descriptor
        }
        try
        {
            Processes.FileLocks.LockWithin(file, Libc.LOCK_EX, _lockWait, path);
            return file; // closing it releases the lock
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private void ReloadUnderLocks()
    {
        System.Diagnostics.Debug.Assert(Monitor.IsEntered(_lock), "reloading the cursors needs the cursors lock");
        _file?.Dispose();
        _file = QueueFiles.TryOpenExisting(_path, write: true);
        if (_file is null) return; // nobody wrote one yet: the state stays what it was
        byte[] bytes = QueueFiles.ReadAll(_file, _path, 2 * CursorFile.MaxSlotSize);
        CursorState state = CursorFile.Decode(bytes, _queueId, _path);
        _slotSize = bytes.Length / 2;
        Volatile.Write(ref _state, state); // pairs with Volatile.Read in Snapshot; its writer fdatasync'ed it before unlocking
    }

    private void PersistUnderCursorLock(CursorState next)
    {
        System.Diagnostics.Debug.Assert(Monitor.IsEntered(_lock), "persisting the cursors needs the cursors lock");
        int needed = CursorFile.SlotSizeFor(next);
        if (_file is null || needed > _slotSize)
        {
            Rewrite(next, Math.Max(needed, _slotSize));
        }
        else
        {
            // In place into the slot that does not hold the current generation: a tear here leaves the
            // other slot, the current state, intact.
            byte[] slot = new byte[_slotSize];
            CursorFile.EncodeSlot(slot, next, _queueId);
            RandomAccess.Write(_file, slot, (next.Generation % 2) * _slotSize);
            if (Libc.fdatasync((int)_file.DangerousGetHandle()) != 0)
                throw new IOException($"fdatasync of {_path} failed: {Libc.LastError()}; the commit is not durable");
        }
        Volatile.Write(ref _state, next); // publish only once durable: pairs with Volatile.Read in Snapshot
    }

    /// <summary>A new file with both slots, replaced atomically and durably: first write or a bigger slot.</summary>
    private void Rewrite(CursorState next, int slotSize)
    {
        byte[] file = new byte[2 * slotSize];
        CursorFile.EncodeSlot(file.AsSpan(0, slotSize), next, _queueId);
        CursorFile.EncodeSlot(file.AsSpan(slotSize, slotSize), next, _queueId);
        _file?.Dispose();
        _file = null;
        QueueFiles.ReplaceAtomically(_path, file, _fileMode, durable: true);
        _file = QueueFiles.OpenExisting(_path, write: true);
        _slotSize = slotSize;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _file?.Dispose();
            _file = null;
        }
    }
}
