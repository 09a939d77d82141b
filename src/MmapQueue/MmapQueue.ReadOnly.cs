using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues;

/// <summary>
/// The read-only queue (<see cref="MmapQueueOptions.ReadOnly"/>): a reader process beside the writer's. What it knows
/// of the queue it learns from the files: the segment list from the directory (re-listed when a reader reaches the
/// end of what it knows, and by <see cref="FirstSequence"/>), the end of the queue by walking published commit words.
/// </summary>
/// <remarks>
/// <para><b>Segments the writer removes.</b> Retention deletes a segment, or renames it to a spare, zeroes it and
/// reuses it under a later name (recycling). A reader registers a lease (<see cref="ReaderLease"/>, in <c>readers/</c>)
/// at the sequence it is about to read <i>before</i> it maps a segment, and the writer's retention keeps every
/// segment from the lowest live lease on. A retention pass that listed the leases just before the registration can
/// still take the segment: so the mapping is checked against its name after it is made (the header's base sequence
/// and queue id), and a segment whose file left its name (<see cref="Segment.HasVanished"/>) is never read further:
/// its reader skips to the first sequence still stored and logs the gap (event 1032), as after a DropOldest.</para>
/// <para><b>Concurrency.</b> <c>_refreshLock</c> (a leaf) serializes re-listings, which grow and shrink the
/// <see cref="SegmentList"/> (copy-on-write, read lock-free). <c>_tailLock</c> (a leaf, taken before
/// <c>_refreshLock</c>) guards the tail walker's position, segment and lease. <c>_waitsInFlight</c>
/// (Interlocked) counts blocking waits on the <c>notify</c> page; Dispose sets <c>_disposed</c> first (volatile), then
/// waits for the count to reach 0 before unmapping the page.</para>
/// </remarks>
public sealed partial class MmapQueue
{
    private readonly bool _readOnly;
    private readonly IDisposable? _readerFileOwner; // files this read-only queue creates go to queue.meta's owner (root only): ReaderFileOwners
    private readonly object _refreshLock = new();
    private readonly object _tailLock = new();
    private Segment? _tailSegment;   // the segment the tail walker holds a reference on (read-only queues)
    private int _tailOffset;
    private long _tailSequence;
    private ReaderLease? _tailLease; // pins the tail walker's segment

    /// <summary>True when this queue was opened with <see cref="MmapQueueOptions.ReadOnly"/>.</summary>
    internal bool IsReadOnly => _readOnly;

    private InvalidOperationException ReadOnlyError(string what) =>
        new($"{what} is not allowed: queue {_directory} is open read-only (MmapQueueOptions.ReadOnly); only the writer process appends and flushes.");

    private static QueueDirectory.Meta ReadOnlyMeta(string directory)
    {
        string path = System.IO.Path.Combine(directory, SegmentNames.MetaName);
        return QueueDirectory.TryReadMeta(path)
               ?? throw new FileNotFoundException($"Cannot open {directory} read-only: it holds no {SegmentNames.MetaName} (not a queue, or its writer never opened it).", path);
    }

    private static Segment[] ReadOnlySegments(string directory, long segmentSize, Guid queueId)
    {
        var files = QueueDirectory.ListSegments(directory);
        if (files.Count == 0)
            throw new IOException($"Cannot open {directory} read-only: it holds no segment file (*{SegmentNames.Extension}) yet; open it once the writer has.");
        return files.Select(f => Segment.ForReader(f.Path, f.Base, segmentSize, queueId)).ToArray();
    }

    /// <summary>The read-only queue's "active segment": never mapped, sealed, so every reservation fails and goes to Roll.</summary>
    private static Segment ReadOnlyPlaceholder(string directory, long segmentSize)
    {
        var placeholder = new Segment(System.IO.Path.Combine(directory, "(read-only)"), long.MaxValue, segmentSize);
        placeholder.Seal();
        return placeholder;
    }

    /// <summary>
    /// Re-lists the directory: segments the writer added (above the last known) are listed, segments it removed
    /// (below the first file left) are forgotten (a reader still on one keeps its mapping). Returns the list.
    /// </summary>
    private SegmentList RefreshSegments()
    {
        lock (_refreshLock)
        {
            List<(long Base, string Path)> files;
            try
            {
                files = QueueDirectory.ListSegments(_directory);
            }
            catch (DirectoryNotFoundException)
            {
                return _segments; // the directory was removed under us: what we know is all there is
            }
            long last = _segments.Snapshot[^1].BaseSequence;
            foreach ((long b, string path) in files)
                if (b > last) _segments.Add(Segment.ForReader(path, b, _segmentSize, _queueId));
            if (files.Count > 0)
            {
                Segment[] now = _segments.Snapshot;
                int gone = 0;
                while (gone + 1 < now.Length && now[gone].BaseSequence < files[0].Base) gone++;
                _segments.RemovePrefix(gone, deleteIndexes: false);
            }
            return _segments;
        }
    }

    /// <summary>
    /// Moves <paramref name="lease"/> to <paramref name="sequence"/>, registering it first if needed (read-only
    /// queues only; the writer's readers hold segment references instead). Call before mapping the segment.
    /// </summary>
    /// <remarks>
    /// A new lease, or one moved back, pins segments no retention pass has seen it pin yet: it waits out a pass in
    /// flight (<see cref="ReaderLeases.WaitForPass"/>); the caller then checks its segment is still its file. A lease
    /// moved forward needs no wait: its old position pinned everything from there on.
    /// </remarks>
    internal void PinLease(ref ReaderLease? lease, long sequence)
    {
        if (!_readOnly) return;
        if (lease is not null && sequence >= lease.LowestSequence)
        {
            if (sequence != lease.LowestSequence) lease.Advance(sequence);
            return;
        }
        if (lease is null) lease = ReaderLease.Register(_directory, sequence, _options.FilePermissions);
        else lease.Advance(sequence);
        ReaderLeases.WaitForPass(_directory, _options.FilePermissions);
    }

    /// <summary>
    /// The end of the queue as the files say: the tail walker steps over published frames and follows end markers.
    /// Between calls its lease is parked (pins nothing: a walker left behind must not keep the writer from freeing
    /// segments); each call pins its position again, then checks that its segment is still the file it mapped.
    /// </summary>
    private long ReadOnlyNextSequence()
    {
        lock (_tailLock)
        {
            if (_disposed) return _tailSequence;
            try
            {
                for (int restarts = 0; ; restarts++)
                {
                    if (_tailSegment is not null) PinLease(ref _tailLease, _tailSequence);
                    if (_tailSegment is null || _tailSegment.HasVanished(force: true))
                    {
                        if (restarts > 3 || !StartTailWalk()) return _tailSequence;
                    }
                    Segment seg = _tailSegment!;
                    if (WalkTail(seg)) continue; // reached the segment's end and moved on
                    return _tailSequence;
                }
            }
            finally
            {
                _tailLease?.Advance(ParkedLease);
            }
        }
    }

    /// <summary>The sequence a parked lease names: above every sequence, so it pins nothing.</summary>
    private const long ParkedLease = long.MaxValue;

    /// <summary>Walks <paramref name="seg"/> from the walker's position; true when it moved to the next segment (walk on).</summary>
    private bool WalkTail(Segment seg)
    {
        ReadOnlySpan<byte> bytes = seg.Bytes;
        int offset = _tailOffset;
        long sequence = _tailSequence;
        bool atEnd = false;
        while (true)
        {
            if (offset + SegmentLayout.RecordHeaderSize > bytes.Length) { atEnd = true; break; }
            FrameKind kind = Frames.ClassifyWord(seg.ReadWord(offset), out int length); // acquire: pairs with PublishHeader
            if (kind is FrameKind.Payload or FrameKind.Aborted && (long)offset + SegmentLayout.FrameLength(length) <= bytes.Length)
            {
                offset += SegmentLayout.FrameLength(length);
                sequence++;
                continue;
            }
            atEnd = kind == FrameKind.EndOfSegment;
            break; // not yet (zero or claim), or a bad frame the readers will report
        }
        _tailOffset = offset;
        _tailSequence = sequence;
        if (!atEnd) return false;
        // The lease, pinned at this call's start in this segment, pins the next one too while it is mapped.
        if (SegmentStartingAt(sequence) is not { } next || !next.TryAcquire()) return false; // not listed yet: the end for now
        seg.Release();
        _tailSegment = next;
        _tailOffset = SegmentLayout.FirstRecordOffset;
        PinLease(ref _tailLease, sequence); // forward: no wait needed
        return true;
    }

    /// <summary>Puts the tail walker at the start of the last segment listed; false when none could be mapped.</summary>
    private bool StartTailWalk()
    {
        _tailSegment?.Release();
        _tailSegment = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            Segment last = RefreshSegments().Snapshot[^1];
            PinLease(ref _tailLease, last.BaseSequence);
            if (!last.TryAcquire()) continue; // recycled or deleted since the listing: list again
            if (last.HasVanished(force: true))
            {
                last.Release();
                continue;
            }
            _tailSegment = last;
            _tailOffset = SegmentLayout.FirstRecordOffset;
            _tailSequence = last.BaseSequence;
            return true;
        }
        return false;
    }

    /// <summary>Read-only <see cref="Locate"/>: lease first, then the segment, from its first record (no index files are read).</summary>
    private (Segment Segment, int Offset, long Sequence, long Target) LocateReadOnly(long sequence, OutOfRange outOfRange, ref ReaderLease? lease)
    {
        for (int attempt = 0; ; attempt++)
        {
            long first = FirstSequence, next = NextSequence;
            long target = sequence;
            if (sequence < first || sequence > next)
            {
                if (outOfRange != OutOfRange.Clamp) throw SequenceOutOfRangeException.For(_directory, sequence, first, next);
                target = Math.Clamp(sequence, first, next);
            }
            PinLease(ref lease, target); // before the mapping: the writer keeps the segment from here on
            Segment? seg = _segments.Find(target);
            if (seg is not null && seg.TryAcquire())
            {
                if (!seg.HasVanished(force: true)) return (seg, SegmentLayout.FirstRecordOffset, seg.BaseSequence, target);
                seg.Release(); // mapped before (by another reader here) and freed by a pass our lease came too late for
            }
            if (attempt > 100) throw new IOException($"Queue {_directory}: the segment holding {target} vanished 100 times in a row while it was opened.");
        }
    }

    private void DisposeReadOnly()
    {
        lock (_tailLock)
        {
            if (_disposed) return;
            _disposed = true;
            _tailSegment?.Release();
            _tailSegment = null;
            _tailLease?.Dispose();
        }
        CloseSharedWakeupForReaders();
        _consumers.ReleaseOwnerships();
        _cursors.Dispose();
        _readerFileOwner?.Dispose();
        WakeReaders();
    }
}
