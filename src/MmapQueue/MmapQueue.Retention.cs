using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

/// <remarks>
/// <para><b>Retention</b> deletes a prefix of the segment list, oldest first, under <c>_retentionLock</c>.
/// A segment goes when every named consumer has committed past its end (or a limit says so) and nobody
/// holds a reference on it: no reader is on it, no view into it is live, and the flusher is done with it
/// (<see cref="Segment.FullyFlushed"/>). The scan stops at the first segment that must stay, so a reader
/// on segment k keeps k and everything after it. The retention floor is written to the cursors file
/// (fdatasync) before any unlink, so a crash between unlinks leaves no gap that recovery could mistake for
/// a torn queue: opening deletes whatever lies below the floor.</para>
/// <para><b>Why reading the cursors without a lock is safe.</b> Retention takes
/// <see cref="CursorStore.Snapshot"/>, an immutable state that the cursor writer publishes with a
/// <c>Volatile.Write</c> only after its fdatasync returned; it does not take the cursor lock, so a commit
/// never waits for an unlink and retention never waits for an fdatasync. The snapshot may be stale by the
/// time retention acts on it. A stale snapshot shows <i>older</i> commits, which only keeps segments a
/// little longer: the next commit triggers another pass. It can also miss a consumer's <i>backward</i>
/// move (a <see cref="QueueReader.Seek"/> before its commit, then <see cref="QueueReader.Commit"/>) or a
/// consumer registered a moment ago. Both reach that position through a reader, and a reader takes its
/// segment reference (<see cref="Segment.TryAcquire"/>) before it can commit there; the reference check
/// and the delete are one step under the segment's own lock (<see cref="Segment.TryDeleteUnreferenced"/>),
/// and the prefix rule protects every later segment. So a stale read can delay a deletion, never make one
/// wrong. Committed positions are always durable when retention sees them, so a crash right after a
/// deletion never leaves a consumer resuming below the first segment because of that deletion.</para>
/// </remarks>
public sealed partial class MmapQueue
{
    private readonly object _retentionLock = new();
    private long _droppedRecords;
    private TaskCompletionSource _spaceFreed = new(TaskCreationOptions.RunContinuationsAsynchronously); // replaced under _segmentsLock
    private int _retentionScheduled;
    private readonly HashSet<Task> _background = [];
    private CancellationTokenSource? _ageStop;
    private Task? _ageTask;

    /// <summary>
    /// Records deleted by a limit (<see cref="MmapQueueOptions.MaxQueueSizeBytes"/> with
    /// <see cref="QueueFullPolicy.DropOldest"/>, or <see cref="MmapQueueOptions.RetentionAge"/>) before every
    /// named consumer had committed past them; with no named consumers, every record a limit deleted.
    /// Counted since this queue object was opened; each drop is also logged as a warning.
    /// </summary>
    public long DroppedRecords => Interlocked.Read(ref _droppedRecords);

    /// <summary>Completes the next time retention removes a segment (a blocked producer waits on it).</summary>
    private Task SpaceFreed { get { lock (_segmentsLock) return _spaceFreed.Task; } }

    /// <summary>Deletes the segments retention allows now; returns how many. Runs on commit, after rolls and on a timer.</summary>
    internal int ApplyRetention()
    {
        lock (_retentionLock)
        {
            if (_disposed) return 0;
            Segment[] segs = Segments;
            CursorState cursors = _cursors.Snapshot; // lock-free on purpose: see the remarks above
            bool anyConsumer = cursors.Committed.Count > 0;
            long slowest = anyConsumer ? cursors.Committed.Values.Min() : long.MinValue;
            DateTime? writtenBefore = _options.RetentionAge is { } age ? DateTime.UtcNow - age : null;
            int Deletable(bool checkHolders)
            {
                int count = 0;
                for (; count + 1 < segs.Length; count++) // never the last segment: producers append there
                {
                    Segment s = segs[count];
                    long end = segs[count + 1].BaseSequence;
                    // FullyFlushed only goes false -> true (under _flushLock); a stale false just waits for the next pass.
                    if (checkHolders && (!s.FullyFlushed || s.ReferenceCount > 0)) break;
                    bool consumed = anyConsumer && slowest >= end;
                    if (!consumed && !(writtenBefore is { } t && File.GetLastWriteTimeUtc(s.Path) < t)) break;
                }
                return count;
            }
            int count = Deletable(checkHolders: false);
            if (count == 0) return 0;
            if (!segs[count - 1].FullyFlushed)
            {
                // The flusher walks segments in order and must be past a segment (and let go of it) before
                // it goes; Async mode may not have flushed for a while: one flush of what is published.
                lock (_flushLock) FlushCoreUnsynchronized(long.MaxValue);
            }
            count = Deletable(checkHolders: true);
            if (count == 0) return 0;
            _cursors.RaiseFloor(segs[count].BaseSequence);
            int deleted = 0;
            while (deleted < count && segs[deleted].TryDeleteUnreferenced()) deleted++; // a reader that arrived meanwhile stops it
            for (int i = 0; i < deleted; i++)
            {
                long first = segs[i].BaseSequence, end = segs[i + 1].BaseSequence;
                if (anyConsumer && slowest >= end)
                    Log.SegmentDeleted(_logger, segs[i].Path, first, end, "every named consumer committed past it");
                else
                    CountDrop(segs[i], first, end, anyConsumer ? Math.Max(first, slowest) : first, DropReasonAge,
                        $"last written more than RetentionAge {_options.RetentionAge} ago");
            }
            RemovePrefix(deleted);
            return deleted;
        }
    }

    /// <summary>
    /// DropOldest: deletes the oldest segment whether or not it was read (under <c>_rollLock</c>). A reader
    /// still on it keeps the mapping (and the file) until it leaves; then it skips to the first retained
    /// sequence and logs the gap.
    /// </summary>
    private void DropOldestForSpace()
    {
        lock (_retentionLock)
        {
            Segment[] segs = Segments;
            Segment oldest = segs[0];
            long end = segs[1].BaseSequence;
            var spin = new SpinWait();
            while (!oldest.FullyFlushed) // the flusher walks segments in order: it must be past this one first
            {
                lock (_flushLock) FlushCoreUnsynchronized(long.MaxValue);
                if (!oldest.FullyFlushed) spin.SpinOnce(); // a producer that reserved before the seal is still copying
            }
            _cursors.RaiseFloor(end);
            oldest.MarkDeleted();
            CursorState cursors = _cursors.Snapshot;
            long slowest = cursors.Committed.Count > 0 ? cursors.Committed.Values.Min() : oldest.BaseSequence;
            CountDrop(oldest, oldest.BaseSequence, end, Math.Max(oldest.BaseSequence, slowest), DropReasonFull,
                $"the queue reached MaxQueueSizeBytes {_options.MaxQueueSizeBytes} and FullPolicy is DropOldest");
            RemovePrefix(1);
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
        ReportDropped(records, unreadFrom, reason);
    }

    /// <summary>Takes the first <paramref name="n"/> (deleted) segments off the list and wakes blocked producers.</summary>
    private void RemovePrefix(int n)
    {
        if (n == 0) return;
        TaskCompletionSource freed;
        Segment[] removed;
        lock (_segmentsLock)
        {
            removed = _segments[..n];
            Volatile.Write(ref _segments, _segments[n..]);
            freed = _spaceFreed;
            _spaceFreed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        foreach (Segment s in removed) QueueFiles.Delete(s.IndexPath);
        freed.TrySetResult();
    }

    /// <summary>After a roll: a retention pass off the writer's thread (coalesced), when anything can free segments.</summary>
    private void ScheduleRetention()
    {
        if (_options.RetentionAge is null && _cursors.Snapshot.Committed.Count == 0) return;
        if (Interlocked.Exchange(ref _retentionScheduled, 1) == 1) return;
        RunInBackground(() =>
        {
            Volatile.Write(ref _retentionScheduled, 0);
            ApplyRetention();
        });
    }

    private void StartAgeRetention()
    {
        if (_options.RetentionAge is not { } age) return;
        TimeSpan period = TimeSpan.FromTicks(Math.Clamp(age.Ticks / 4, TimeSpan.TicksPerSecond / 10, TimeSpan.TicksPerMinute));
        _ageStop = new CancellationTokenSource();
        CancellationToken stop = _ageStop.Token;
        _ageTask = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(period);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try
                {
                    ApplyRetention();
                }
                catch (IOException e)
                {
                    Log.RetentionFailed(_logger, _directory, e); // the next tick tries again
                }
            }
        }, stop);
    }

    /// <summary>Runs <paramref name="work"/> on the thread pool; <see cref="Dispose"/> waits for it. Failures are logged.</summary>
    private void RunInBackground(Action work)
    {
        Task? task = null;
        task = new Task(() =>
        {
            try
            {
                work();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                Log.RetentionFailed(_logger, _directory, e);
            }
            finally
            {
                lock (_background) _background.Remove(task!);
            }
        });
        lock (_background)
        {
            if (_disposed) return;
            _background.Add(task);
        }
        task.Start(TaskScheduler.Default);
    }

    /// <summary>Stops the age timer and waits for background work; wakes producers blocked on a full queue.</summary>
    private void StopRetention()
    {
        _ageStop?.Cancel();
        try
        {
            _ageTask?.Wait();
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
        {
            // the timer loop ended by cancellation, as asked
        }
        _ageStop?.Dispose();
        WaitForBackgroundWork();
        // A pass on another thread (Commit, RemoveConsumer) that checked _disposed before Dispose set it may
        // still be deleting; wait for it, so nothing touches the directory once Dispose released the lock.
        // Later passes take this lock after Dispose set _disposed and return at once.
        lock (_retentionLock) { }
        lock (_segmentsLock) _spaceFreed.TrySetResult(); // blocked producers wake, see the queue disposed, and throw
    }

    /// <summary>Waits for index builds and retention passes started so far (Dispose, and tests that count mappings).</summary>
    internal void WaitForBackgroundWork()
    {
        Task[] pending;
        lock (_background) pending = [.. _background];
        Task.WaitAll(pending);
    }

    /// <summary>
    /// Before recovery: deletes segments wholly below the retention floor (their unlink was interrupted by a
    /// crash), index files without a segment, and temporary files (a spare segment, a half-written index,
    /// cursors or queue.meta).
    /// </summary>
    private static void RemoveLeftovers(string directory, long floor, Microsoft.Extensions.Logging.ILogger logger)
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
