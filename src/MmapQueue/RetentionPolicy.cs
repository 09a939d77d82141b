using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;
using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>
/// Decides which segments may go and deletes them, oldest first: when every named consumer has committed
/// past them, when <see cref="MmapQueueOptions.RetentionAge"/> says so, or (<see cref="QueueFullPolicy.DropOldest"/>)
/// when the queue is full. Also answers the roll's capacity question (RetentionPolicy.Capacity.cs).
/// </summary>
/// <remarks>
/// <para><b>Concurrency.</b> <c>_retentionLock</c> serializes passes (<see cref="Apply"/>, <see cref="DropOldestForSpace"/>)
/// and guards <c>_closed</c>'s final setting. It is taken under the queue's roll lock (the roll may need room),
/// never the other way round, and before the flush lock (a pass flushes what it deletes), the segment list's
/// lock and the cursors lock. <c>_droppedRecords</c> is written with <c>Interlocked.Add</c> and read with
/// <c>Interlocked.Read</c>; <c>_retentionScheduled</c> is an <c>Interlocked.Exchange</c> flag that coalesces
/// scheduled passes. <c>_closed</c> is volatile: set by <see cref="MarkClosed"/> (under the roll lock, as the queue
/// is marked disposed), read under <c>_retentionLock</c> by every pass.</para>
/// <para><b>What a pass deletes.</b> A prefix of the segment list, under <c>_retentionLock</c>. A segment goes
/// when every named consumer has committed past its end (or a limit says so) and nobody holds a reference on it:
/// no reader is on it, no view into it is live, and the flusher is done with it (<see cref="Segment.FullyFlushed"/>;
/// with <see cref="MmapQueueOptions.RecycleSegments"/> the flusher need not have passed it: a flush that finds its
/// frontier's segment freed goes on from the first one still listed, see docs/DECISIONS.md, "Recycled segments").
/// The scan stops at the first segment that must stay, so a reader on segment k keeps k and everything after it.
/// The retention floor is written to the cursors file (fdatasync) before any unlink, so a crash between unlinks
/// leaves no gap that recovery could mistake for a torn queue: opening deletes whatever lies below the floor.</para>
/// <para><b>Why reading the cursors without a lock is safe.</b> A pass takes <see cref="CursorStore.Snapshot"/>,
/// an immutable state that the cursor writer publishes with a <c>Volatile.Write</c> only after its fdatasync
/// returned; it does not take the cursor lock, so a commit never waits for an unlink and retention never waits
/// for an fdatasync. The snapshot may be stale by the time retention acts on it. A stale snapshot shows
/// <i>older</i> commits, which only keeps segments a little longer: the next commit triggers another pass. It
/// can also miss a consumer's <i>backward</i> move (a <see cref="QueueReader.Seek"/> before its commit, then
/// <see cref="QueueReader.Commit"/>) or a consumer registered a moment ago. Both reach that position through a
/// reader, and a reader takes its segment reference (<see cref="Segment.TryAcquire"/>) before it can commit
/// there; the reference check and the delete are one step under the segment's own lock
/// (<see cref="Segment.TryDeleteUnreferenced"/>), and the prefix rule protects every later segment. So a stale
/// read can delay a deletion, never make one wrong. Committed positions are always durable when retention sees
/// them, so a crash right after a deletion never leaves a consumer resuming below the first segment because of
/// that deletion.</para>
/// <para><b>Other processes.</b> A pass first re-reads the shared cursors file (<see cref="CursorStore.Refresh"/>:
/// commits and registrations of reader processes), and, when something could go, scans reader processes' leases
/// under <c>readers/pass.lock</c> (<see cref="Processes.ReaderLeases"/>): no segment from the lowest live lease on is
/// deleted or recycled, and a reader registering meanwhile waits for the pass to end before it trusts its segment.</para>
/// </remarks>
internal sealed partial class RetentionPolicy(string directory, MmapQueueOptions options, long segmentSize, ILogger logger,
                                              SegmentList segments, CursorStore cursors, Flusher flusher, BackgroundWork background, SegmentAllocator allocator,
                                              Func<long> nextSequence, Action<long, long, string> reportDropped)
{
    private readonly string _directory = directory;
    private readonly MmapQueueOptions _options = options;
    private readonly long _segmentSize = segmentSize;
    private readonly ILogger _logger = logger;
    private readonly SegmentList _segments = segments;
    private readonly CursorStore _cursors = cursors;
    private readonly Flusher _flusher = flusher;
    private readonly BackgroundWork _background = background;
    private readonly SegmentAllocator _allocator = allocator; // takes freed segments as spares (RecycleSegments)
    private readonly Func<long> _nextSequence = nextSequence; // the queue's NextSequence, for the full-queue message
    private readonly Action<long, long, string> _reportDropped = reportDropped; // (records, first unread, reason): metric, event 1030

    private readonly object _retentionLock = new();
    private volatile bool _closed;
    private long _droppedRecords;
    private int _retentionScheduled;
    private PeriodicWork? _ageTimer;

    /// <summary>Records a limit deleted before every named consumer read them (see <see cref="MmapQueue.DroppedRecords"/>).</summary>
    public long DroppedRecords => Interlocked.Read(ref _droppedRecords);

    /// <summary>Deletes the segments retention allows now; returns how many. Runs on commit, after rolls and on a timer.</summary>
    public int Apply()
    {
        lock (_retentionLock)
        {
            if (_closed) return 0;
            try
            {
                return ApplyUnderRetentionLock();
            }
            catch (LockWaitTimeoutException e) // a reader process holds cursors.lock or readers/pass.lock: nothing was deleted
            {
                Log.RetentionPassSkipped(_logger, _directory, e.Message);
                return 0;
            }
        }
    }

    /// <summary>One pass; the caller holds <c>_retentionLock</c>.</summary>
    private int ApplyUnderRetentionLock()
    {
        _cursors.Refresh(); // commits and registrations of reader processes (the shared cursors file)
        Segment[] segs = _segments.Snapshot;
        CursorState cursors = _cursors.Snapshot; // lock-free on purpose: see the remarks above
        bool anyConsumer = cursors.Committed.Count > 0;
        long slowest = anyConsumer ? cursors.Committed.Values.Min() : long.MinValue;
        DateTime? writtenBefore = _options.RetentionAge is { } age ? DateTime.UtcNow - age : null;
        // With RecycleSegments a segment may go before the flusher passed it: the flusher then goes on from the
        // first segment still listed (Flusher.FirstHeldAfter). Without it, the flush first, as it always was.
        bool waitForFlusher = !_options.RecycleSegments;
        long? leased = null; // the lowest sequence a reader process's live lease pins (ReaderLeases), scanned below
        int Deletable(bool checkHolders)
        {
            int count = 0;
            for (; count + 1 < segs.Length; count++) // never the last segment: producers append there
            {
                Segment s = segs[count];
                long end = segs[count + 1].BaseSequence;
                // FullyFlushed only goes false -> true (under the flush lock); a stale false just waits for the next pass.
                if (checkHolders && ((waitForFlusher && !s.FullyFlushed) || s.ReferenceCount > 0)) break;
                if (leased is { } lowest && lowest < end) break; // a reader in another process may still read it: neither deleted nor recycled
                bool consumed = anyConsumer && slowest >= end;
                if (!consumed && !(writtenBefore is { } t && QueueFiles.TryGetLastWriteTimeUtc(s.Path) is { } written && written < t)) break; // a missing file is not "old"
            }
            return count;
        }
        int count = Deletable(checkHolders: false);
        if (count == 0) return 0;
        if (waitForFlusher && !segs[count - 1].FullyFlushed)
        {
            // The flusher walks segments in order and must be past a segment (and let go of it) before
            // it goes; Async mode may not have flushed for a while: one flush of what is published.
            _flusher.FlushPublished();
        }
        // Only when something could go: a listing of readers/, under the pass lock until the last segment is freed,
        // so that a reader registering meanwhile waits for this pass to end before it trusts its segment.
        using Microsoft.Win32.SafeHandles.SafeFileHandle pass = ReaderLeases.HoldPass(_directory, _options.FilePermissions);
        leased = ReaderLeases.Scan(_directory, _logger).LowestSequence;
        count = Deletable(checkHolders: true);
        if (count == 0) return 0;
        _cursors.RaiseFloor(segs[count].BaseSequence);
        int deleted = 0;
        while (deleted < count && Free(segs[deleted])) deleted++; // a reader that arrived meanwhile stops it
        for (int i = 0; i < deleted; i++)
        {
            long first = segs[i].BaseSequence, end = segs[i + 1].BaseSequence;
            if (anyConsumer && slowest >= end)
                Log.SegmentDeleted(_logger, segs[i].Path, first, end, "every named consumer committed past it");
            else
                CountDrop(segs[i], first, end, anyConsumer ? Math.Max(first, slowest) : first, DropReasonAge,
                    $"last written more than RetentionAge {_options.RetentionAge} ago");
        }
        foreach (var (path, reason) in _segments.RemovePrefix(deleted)) Log.IndexDeleteFailed(_logger, path, reason);
        return deleted;
    }

    /// <summary>
    /// Frees one unreferenced segment: with <see cref="MmapQueueOptions.RecycleSegments"/>, and while the allocator
    /// keeps fewer than <see cref="SegmentAllocator.MaxSpares"/> spares, it becomes the next spare (its file renamed
    /// now, cleaned in the background, its pages kept cached); otherwise it is deleted. False when a reader holds it.
    /// Either way the floor written before already covers it, and its old name is gone for good.
    /// </summary>
    private bool Free(Segment s)
    {
        if (!_allocator.WantsRecycled) return s.TryDeleteUnreferenced();
        if (!s.TryRetireForRecycling(out Native.MappedRegion? parked)) return false;
        string spare;
        try
        {
            spare = SegmentFiles.RenameForRecycling(s.Path, _directory);
        }
        catch (IOException e)
        {
            // Retired already (nothing maps or deletes it any more), and the floor written before covers it: it
            // must leave the list like any freed segment, or every later pass would stop at it. Deleted instead;
            // if even that fails, the next open removes it as a file below the floor.
            parked?.Dispose();
            string outcome = "deleted it instead";
            try
            {
                QueueFiles.Delete(s.Path);
            }
            catch (IOException d)
            {
                outcome = $"could not delete it either ({d.Message}); the next open removes it (it lies below the retention floor)";
            }
            Log.RecycleFailed(_logger, s.Path, e.Message, outcome);
            return true;
        }
        _allocator.Recycle(spare, parked);
        return true;
    }

    /// <summary>
    /// DropOldest: deletes the oldest segment whether or not it was read (the caller holds the roll lock). A
    /// reader still on it keeps the mapping (and the file) until it leaves; then it skips to the first retained
    /// sequence and logs the gap.
    /// </summary>
    public void DropOldestForSpace()
    {
        lock (_retentionLock)
        {
            Segment[] segs = _segments.Snapshot;
            Segment oldest = segs[0];
            long end = segs[1].BaseSequence;
            var spin = new SpinWait();
            while (!oldest.FullyFlushed) // the flusher walks segments in order: it must be past this one first
            {
                _flusher.FlushPublished();
                if (!oldest.FullyFlushed) spin.SpinOnce(); // a producer that reserved before the seal is still copying
            }
            try
            {
                _cursors.RaiseFloor(end);
            }
            catch (LockWaitTimeoutException e) // nothing changed: the append fails instead of waiting for a stopped reader
            {
                throw new IOException($"Queue {_directory} is full (FullPolicy DropOldest) and its oldest segment cannot be dropped now: {e.Message}", e);
            }
            oldest.MarkDeleted();
            CursorState cursors = _cursors.Snapshot;
            long slowest = cursors.Committed.Count > 0 ? cursors.Committed.Values.Min() : oldest.BaseSequence;
            CountDrop(oldest, oldest.BaseSequence, end, Math.Max(oldest.BaseSequence, slowest), DropReasonFull,
                $"the queue reached MaxQueueSizeBytes {_options.MaxQueueSizeBytes} and FullPolicy is DropOldest");
            foreach (var (path, reason) in _segments.RemovePrefix(1)) Log.IndexDeleteFailed(_logger, path, reason);
        }
    }

    /// <summary>Drop reasons: low-cardinality values of the <c>mmapq.drop.reason</c> tag and of log event 1030.</summary>
    private const string DropReasonFull = "MaxQueueSizeBytes (FullPolicy DropOldest)", DropReasonAge = "RetentionAge";

    /// <summary>Logs a segment deletion (1012) and counts, logs (1030) and meters the records in it nobody had read.</summary>
    private void CountDrop(Segment s, long first, long end, long unreadFrom, string reason, string detail)
    {
        Log.SegmentDeleted(_logger, s.Path, first, end, detail);
        long records = Math.Max(0, end - unreadFrom);
        if (records == 0) return; // every named consumer had read it
        Interlocked.Add(ref _droppedRecords, records);
        _reportDropped(records, unreadFrom, reason);
    }

    /// <summary>After a roll or an index build: a pass off the writer's thread (coalesced), when anything can free segments.</summary>
    public void Schedule()
    {
        // No early return when no consumer is known here: a reader process may have registered one in the shared
        // cursors file, and its commits run no pass (retention is the writer's): this pass, after each roll, is theirs.
        if (Interlocked.Exchange(ref _retentionScheduled, 1) == 1) return;
        _background.Run(() =>
        {
            Volatile.Write(ref _retentionScheduled, 0);
            Apply();
        });
    }

    /// <summary>Starts the <see cref="MmapQueueOptions.RetentionAge"/> timer (a quarter of the age, between 0.1 s and 1 min).</summary>
    public void StartAgeTimer()
    {
        if (_options.RetentionAge is not { } age) return;
        TimeSpan period = TimeSpan.FromTicks(Math.Clamp(age.Ticks / 4, TimeSpan.TicksPerSecond / 10, TimeSpan.TicksPerMinute));
        _ageTimer = new PeriodicWork(period, () => Apply(), e => Log.RetentionFailed(_logger, _directory, e)); // the next tick tries again
    }

    /// <summary>From now on every pass returns at once (the queue is disposing; the caller holds the roll lock).</summary>
    public void MarkClosed() => _closed = true;

    /// <summary>Stops the age timer. Call after <see cref="MarkClosed"/>.</summary>
    public void StopAgeTimer() => _ageTimer?.Stop();

    /// <summary>
    /// Waits for a pass on another thread (Commit, RemoveConsumer) that checked <c>_closed</c> before it was set
    /// and may still be deleting, so nothing touches the directory once the queue released its lock. Later
    /// passes see <c>_closed</c> and return at once.
    /// </summary>
    public void WaitForRunningPass()
    {
        lock (_retentionLock) { }
    }

    /// <summary>
    /// Before recovery: deletes segments wholly below the retention floor (their unlink was interrupted by a
    /// crash), index files without a segment, and temporary files (a spare segment, a half-written index,
    /// cursors or queue.meta).
    /// </summary>
    public static void RemoveLeftovers(string directory, long floor, ILogger logger)
    {
        QueueFiles.DeleteTemporaries(directory);
        var files = QueueDirectory.ListSegments(directory);
        for (int i = 0; i + 1 < files.Count && files[i + 1].Base <= floor; i++)
        {
            Log.LeftoverSegmentRemoved(logger, files[i].Path, floor);
            QueueFiles.Delete(files[i].Path);
        }
        foreach (string idx in Directory.EnumerateFiles(directory, "*" + Format.IndexLayout.Extension))
            if (!System.IO.Path.Exists(System.IO.Path.ChangeExtension(idx, SegmentNames.Extension))) QueueFiles.Delete(idx);
    }
}
