using System.Diagnostics;
using MmapQueues.Format;
using MmapQueues.Native;

namespace MmapQueues.Storage;

/// <summary>
/// A segment seen from a read-only queue (a reader process): mapped read-only, never written, never deleted. The
/// writer may delete or recycle the file at any time (a recycled file is renamed to a spare, zeroed in memory and
/// reused under a later base sequence), so every mapping is checked against the name it was opened by.
/// </summary>
internal sealed partial class Segment
{
    private Guid? _readerOf;            // the queue id, for a segment of a read-only queue; null for the writer's
    private long _nextVanishCheck;      // Stopwatch timestamp before which HasVanished answers from _vanished
    private bool _vanished;

    /// <summary>The least time between two <c>statx</c> calls of <see cref="HasVanished"/> on one segment: 10 ms.</summary>
    private static readonly long VanishCheckTicks = Stopwatch.Frequency / 100;

    /// <summary>A segment of a read-only queue, not mapped yet (<see cref="TryAcquire"/> maps and checks it).</summary>
    public static Segment ForReader(string path, long baseSequence, long size, Guid queueId) =>
        new(path, baseSequence, size) { _readerOf = queueId };

    /// <summary>True for a segment of a read-only queue.</summary>
    public bool IsReaderView => _readerOf is not null;

    /// <summary>
    /// Maps the file read-only and checks its header (magic, version, size, base sequence, queue id). False when the
    /// file is gone, or its header no longer names this segment while the name now points to another file (or none):
    /// the writer deleted or recycled it. A bad header on the very file the name still holds is corruption.
    /// </summary>
    private bool TryMapForReaderUnderMapLock()
    {
        using var handle = QueueFiles.TryOpenExisting(Path, write: false);
        if (handle is null) return false;
        long length = RandomAccess.GetLength(handle); // recycling keeps the length: another one is damage
        if (length != Size) throw QueueCorruptedException.At(Path, 0, $"file length {Size} (the queue's segment size)", $"{length}");
        MappedRegion map = MappedRegion.Map(handle, Size, Path, writable: false);
        SegmentHeader header = SegmentHeader.Read(map.Span);
        if (header.Check(BaseSequence, Size, _readerOf!.Value) is { } problem)
        {
            bool same = Libc.InodeOfPath(Path) == map.Inode;
            map.Dispose();
            if (same) throw QueueCorruptedException.At(Path, problem.Offset, problem.Expected, problem.Found);
            return false; // renamed away (recycled) between the open and the check
        }
        _map = map;
        return true;
    }

    /// <summary>
    /// True once the file this segment mapped is no longer at its name (deleted, or renamed for recycling: its
    /// bytes may then be zeroed and rewritten with later records). Checked at most every 10 ms per segment, unless
    /// <paramref name="force"/> (a caller that just pinned it with a lease and must know now).
    /// </summary>
    public bool HasVanished(bool force = false)
    {
        if (_readerOf is null) return false;
        long now = Stopwatch.GetTimestamp();
        if (_vanished || (!force && now < Volatile.Read(ref _nextVanishCheck))) return _vanished;
        Volatile.Write(ref _nextVanishCheck, now + VanishCheckTicks);
        ulong? inode;
        lock (_mapLock)
        {
            if (_map is null) return _vanished;
            inode = Libc.InodeOfPath(Path);
            _vanished = inode != _map.Inode;
        }
        return _vanished;
    }
}
