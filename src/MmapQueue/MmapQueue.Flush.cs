using System.Diagnostics;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    // One lock, named: everything ending in "Unsynchronized" below requires _flushLock held.
    private readonly object _flushLock = new();

    // The flush frontier: every record before (_frontier, _frontierOffset), i.e. every sequence below
    // _durableSequence, is durable. The frontier takes a reference on its segment only while a flush runs,
    // so a queue that is never flushed does not keep an old segment mapped.
    private Segment? _frontier;
    private int _frontierOffset;
    private long _durableSequence; // written under _flushLock; read lock-free by WaitDurable (Volatile pair)
    private int _directoryDirty;   // 1 after a segment rename that no directory fsync has covered yet
    private readonly List<Segment> _watermarkPending = new(); // sealed segments whose header watermark is not yet on disk
    private long _flushCount;

    private CancellationTokenSource? _intervalStop;
    private Task? _intervalTask;

    /// <summary>The sequence below which every record is durable (survives power loss).</summary>
    public long DurableSequence => Volatile.Read(ref _durableSequence);

    /// <summary>
    /// Makes every record appended before this call durable: msync(MS_SYNC) of the dirty ranges of every
    /// segment written since the last flush, and an fsync of the directory if segments were created.
    /// Concurrent callers share the work (group commit): one msync covers everything published so far.
    /// </summary>
    /// <exception cref="IOException">msync or fsync failed; nothing is reported durable that was not synced.</exception>
    public void Flush()
    {
        ThrowIfDisposed();
        Segment active = Volatile.Read(ref _active);
        long target = active.BaseSequence + active.ReservedTail.Records;
        if (Volatile.Read(ref _durableSequence) >= target) return;
        lock (_flushLock)
        {
            if (_durableSequence >= target) return;
            FlushCoreUnsynchronized(target);
        }
        SignalFlushEnded();
    }

    /// <summary>
    /// Sync mode: returns once <paramref name="sequence"/> is durable, sharing msyncs with other producers.
    /// The first waiter leads a flush (which takes along every record already published); the others do
    /// not queue on <see cref="_flushLock"/> (released one by one, they would each lead a flush of about one
    /// record: a convoy) but wait for the flush to end, then return if it covered them or elect the next leader.
    /// </summary>
    private void WaitDurable(long sequence)
    {
        Interlocked.Increment(ref _syncWaiting);
        try
        {
            WaitDurableCore(sequence);
        }
        finally
        {
            Interlocked.Decrement(ref _syncWaiting);
        }
    }

    private void WaitDurableCore(long sequence)
    {
        // Volatile.Read pairs with the Volatile.Write of _durableSequence at the end of FlushCoreUnsynchronized.
        while (Volatile.Read(ref _durableSequence) <= sequence)
        {
            long epoch = Volatile.Read(ref _flushEpoch);
            if (Monitor.TryEnter(_flushLock))
            {
                try
                {
                    if (_durableSequence > sequence) return;
                    GatherGroupUnsynchronized();
                    FlushCoreUnsynchronized(sequence + 1);
                    _lastGroup = Volatile.Read(ref _syncWaiting); // the producers this flush had waiting: the next group to gather
                }
                finally
                {
                    Monitor.Exit(_flushLock);
                    SignalFlushEnded();
                }
            }
            else
            {
                lock (_flushEnded)
                {
                    // The epoch is bumped under this lock after a flush releases _flushLock, so a flush that ended
                    // after our read above is seen here, and one that ends later pulses us. The timeout covers a
                    // holder that does not signal (Dispose).
                    if (_flushEpoch == epoch && Volatile.Read(ref _durableSequence) <= sequence)
                        Monitor.Wait(_flushEnded, FollowerWaitLimit);
                }
            }
        }
    }

    /// <summary>
    /// Group commit's gathering step (as PostgreSQL's commit_delay, but adaptive): when several producers
    /// were waiting as the last sync flush ended, they were just woken and are appending their next
    /// records. A leader that started its msync at once would take only the few that made it (on 2 vCPUs,
    /// often one or two), so it yields until as many records wait again, for at most as long as the last
    /// flush took (waiting longer would cost more than a second flush) and never over <see cref="GatherLimit"/>.
    /// A lone producer (nobody else waiting last time) never waits. Measured in benchmarks/RESULTS.md, case 4.
    /// </summary>
    private void GatherGroupUnsynchronized()
    {
        int want = _lastGroup;
        if (want <= 1) return;
        long deadline = Stopwatch.GetTimestamp() + Math.Min(_lastFlushTicks, GatherLimitTicks);
        while (RecordsNotDurable() < want && Stopwatch.GetTimestamp() < deadline)
            Thread.Yield(); // lets the woken producers run: they append, then wait as followers
    }

    /// <summary>Records reserved but not yet durable: in sync mode, one per producer with an Enqueue under way.</summary>
    private long RecordsNotDurable()
    {
        Segment active = Volatile.Read(ref _active);
        return active.BaseSequence + active.ReservedTail.Records - _durableSequence;
    }

    private int _syncWaiting; // producers inside WaitDurable (Interlocked; read by the gathering leader)
    private int _lastGroup;   // producers waiting as the last sync-mode leader's flush ended; under _flushLock
    private long _lastFlushTicks; // Stopwatch ticks the last flush took; under _flushLock
    private static readonly TimeSpan GatherLimit = TimeSpan.FromMilliseconds(1);
    private static readonly long GatherLimitTicks = (long)(GatherLimit.TotalSeconds * Stopwatch.Frequency);

    private readonly object _flushEnded = new(); // followers in WaitDurable wait here while a flush runs
    private long _flushEpoch;                    // bumped under _flushEnded after each flush releases _flushLock
    private static readonly TimeSpan FollowerWaitLimit = TimeSpan.FromMilliseconds(5);

    /// <summary>Wakes sync-mode producers waiting for a flush to end; call after releasing <see cref="_flushLock"/>.</summary>
    private void SignalFlushEnded()
    {
        lock (_flushEnded)
        {
            _flushEpoch++;
            Monitor.PulseAll(_flushEnded);
        }
    }

    private void InitializeFlushState(Segment tail, long nextSequence)
    {
        _frontier = tail;
        _frontierOffset = (int)tail.FlushedOffset;
        _durableSequence = nextSequence;
    }

    /// <summary>
    /// Walks the frontier forward over published records to <paramref name="target"/> at least (waiting for
    /// producers that reserved below it to publish; they always do) and on over whatever else is already
    /// published; msyncs what it passed; then reports it durable.
    /// </summary>
    private void FlushCoreUnsynchronized(long target)
    {
        var started = Stopwatch.GetTimestamp();
        // Null once Dispose finished: a Flush or sync-mode wait that raced it and was not covered by its flush.
        Segment seg = _frontier ?? throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed.");
        bool skipMsync = _options.TestOnlySkipMsyncEveryNthFlush > 0 && ++_flushCount % _options.TestOnlySkipMsyncEveryNthFlush == 0;
        int off = _frontierOffset;
        long seq = _durableSequence;
        seg.Acquire(); // held across the walk; handed from segment to segment; released in finally
        try
        {
            WalkAndSyncUnsynchronized(ref seg, ref off, ref seq, target, skipMsync);
        }
        finally
        {
            seg.Release();
        }
        PersistWatermarksUnsynchronized(skipMsync);
        if (Interlocked.Exchange(ref _directoryDirty, 0) == 1 && !skipMsync)
        {
            try
            {
                Native.Libc.FsyncDirectory(_directory);
            }
            catch (IOException)
            {
                Volatile.Write(ref _directoryDirty, 1); // still not covered: the next flush must try again before reporting anything
                throw;
            }
        }

        _frontier = seg;
        _frontierOffset = off;
        Volatile.Write(ref _durableSequence, seq); // pairs with Volatile.Read in WaitDurable / DurableSequence
        long ended = Stopwatch.GetTimestamp();
        _lastFlushTicks = ended - started;
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started, ended);
        _metrics?.RecordFlush(elapsed);
        double ms = elapsed.TotalMilliseconds;
        if (ms > 100) Log.SlowFlush(_logger, _directory, ms);
    }

    /// <summary>
    /// The walk of <see cref="FlushCoreUnsynchronized"/>: advances (seg, off, seq) over published records,
    /// msyncing each segment it finishes and finally the range it advanced in the last one. The caller holds
    /// a reference on <paramref name="seg"/>; the walk hands it over from segment to segment.
    /// </summary>
    private void WalkAndSyncUnsynchronized(ref Segment seg, ref int off, ref long seq, long target, bool skipMsync)
    {
        var spin = new SpinWait();
        // long.MaxValue: wait for nobody, take everything published.
        long mustReach = target == long.MaxValue ? 0 : target;
        long stopAt = target == long.MaxValue ? long.MaxValue : target + GroupCommitOvershoot;
        var cursor = new FrameCursor(seg.Bytes, off, seq);
        while (cursor.Sequence < stopAt)
        {
            FrameKind kind = cursor.Read(verifyCrc: false); // acquire-loads the commit word: pairs with PublishWord
            if (kind is FrameKind.EndOfSegment or FrameKind.SegmentFull)
            {
                Segment? next = SegmentStartingAt(cursor.Sequence);
                if (next is null) break; // sealed, but the roll has not listed the next segment: nothing more is appended
                int end = cursor.End;
                long from = seg.WatermarkUnsynced ? 0 : seg.FlushedOffset;
                if (!skipMsync) seg.Region.Flush(from, end - from, seg.Path);
                seg.FlushedOffset = end;
                seg.FullyFlushed = true;
                Recovery.SetDurableEnd(seg, end); // exact for a sealed segment; synced after its data by PersistWatermarks
                _watermarkPending.Add(seg);
                next.Acquire();
                seg.Release();
                seg = next;
                cursor = new FrameCursor(seg.Bytes, SegmentLayout.FirstRecordOffset, cursor.Sequence);
                continue;
            }
            if (kind == FrameKind.Empty)
            {
                if (cursor.Sequence >= mustReach) break; // past the target: take what is published, wait for nothing more
                spin.SpinOnce();          // a producer reserved below target and is still copying
                continue;
            }
            if (kind == FrameKind.Bad) // only bytes written past the queue's back can do this: do not report them durable
                throw QueueCorruptedException.At(seg.Path, cursor.Offset, cursor.Problem!.Value.Expected, cursor.Problem.Value.Found);
            cursor.Advance();
        }
        off = cursor.Offset;
        seq = cursor.Sequence;

        if (off > seg.FlushedOffset)
        {
            // One msync covers the new records and, when it moved, the watermark in the header page.
            long from = seg.WatermarkUnsynced ? 0 : seg.FlushedOffset;
            if (!skipMsync) seg.Region.Flush(from, off - from, seg.Path);
            seg.WatermarkUnsynced = false;
            seg.FlushedOffset = off;
            if (off - seg.Watermark >= WatermarkStepBytes)
            {
                // Lags one flush: it reaches the disk with the next msync from 0. Moved only every
                // WatermarkStepBytes so that a sync-mode flush usually writes the record's page alone.
                Recovery.SetDurableEnd(seg, off);
                seg.Watermark = off;
                seg.WatermarkUnsynced = true;
            }
        }
    }

    /// <summary>
    /// Group commit: a flush goes on past its target over records already published (other producers'
    /// records, which then need no msync of their own), up to this many, so a flood cannot keep it walking.
    /// </summary>
    private const long GroupCommitOvershoot = 1 << 16;

    /// <summary>How far the frontier moves before the header watermark follows (see docs/DECISIONS.md).</summary>
    private const long WatermarkStepBytes = 1 << 20;

    /// <summary>
    /// msyncs the header page of sealed segments whose watermark moved since; with <paramref name="includeFrontier"/>
    /// (on Dispose) also brings the frontier's watermark up to date and syncs it.
    /// </summary>
    private void PersistWatermarksUnsynchronized(bool skipMsync = false, bool includeFrontier = false)
    {
        foreach (Segment s in _watermarkPending)
        {
            if (!s.TryAcquire()) continue; // retention deleted it: its header no longer matters
            try
            {
                if (!skipMsync) s.Region.Flush(0, SegmentLayout.HeaderSize, s.Path);
            }
            finally
            {
                s.Release();
            }
        }
        _watermarkPending.Clear();
        if (includeFrontier && _frontier is { } f)
        {
            f.Acquire();
            try
            {
                Recovery.SetDurableEnd(f, f.FlushedOffset);
                f.Watermark = f.FlushedOffset;
                f.Region.Flush(0, SegmentLayout.HeaderSize, f.Path);
                f.WatermarkUnsynced = false;
            }
            finally
            {
                f.Release();
            }
        }
    }

    private void StartBackgroundFlush()
    {
        if (_options.FlushMode != FlushMode.Interval) return;
        _intervalStop = new CancellationTokenSource();
        CancellationToken stop = _intervalStop.Token;
        _intervalTask = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(_options.FlushInterval);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try
                {
                    Flush();
                }
                catch (IOException e)
                {
                    Log.BackgroundFlushFailed(_logger, _directory, e); // the next Flush or tick tries again
                }
                catch (ObjectDisposedException) when (_disposed)
                {
                    // A tick between Dispose marking the queue disposed and stopping this loop: Dispose's own
                    // flush covers everything. Faulting here would make Dispose throw and skip that flush.
                    return;
                }
            }
        }, stop);
    }

    private void StopBackgroundFlush()
    {
        if (_intervalStop is null) return;
        _intervalStop.Cancel();
        try
        {
            _intervalTask!.Wait();
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
        {
            // the loop ended by cancellation, as asked
        }
        _intervalStop.Dispose();
    }
}
