using System.Diagnostics;
using MmapQueues.Metrics;
using MmapQueues.Storage;
using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>
/// Makes published records <b>durable</b>: walks the flush frontier forward over published records, msyncs
/// what it passed, syncs header watermarks and the directory, then raises <see cref="DurableSequence"/>.
/// Shares msyncs between callers (group commit) and runs the <see cref="FlushMode.Interval"/> timer.
/// </summary>
/// <remarks>
/// <para><b>Concurrency.</b></para>
/// <list type="bullet">
/// <item><c>_flushLock</c> guards the frontier (<c>_frontier</c>, <c>_frontierOffset</c>), the writes of
/// <c>_durableSequence</c>, <c>_watermarkPending</c>, <c>_lastGroup</c>, <c>_lastFlushTicks</c>, <c>_flushCount</c>,
/// and the flush bookkeeping of every segment (<see cref="Segment.FlushedOffset"/>, <see cref="Segment.Watermark"/>,
/// <see cref="Segment.WatermarkUnsynced"/>, <see cref="Segment.FullyFlushed"/>). Methods that need it end in
/// <c>UnderFlushLock</c> and assert it. It is taken after the queue's roll lock and the retention lock (both
/// may flush) and before a segment's map lock; see docs/ARCHITECTURE.md for the whole order.</item>
/// <item><c>_flushEnded</c> is a leaf lock: sync-mode followers wait on it while a leader flushes; it guards
/// <c>_flushEpoch</c>, which a leader bumps only after releasing <c>_flushLock</c>.</item>
/// <item><c>_durableSequence</c>: stored with <c>Volatile.Write</c> at the end of <see cref="FlushUnderFlushLock"/>
/// (after every msync it reports returned), loaded with <c>Volatile.Read</c> by <see cref="DurableSequence"/> and
/// <see cref="WaitDurable"/>.</item>
/// <item><c>_directoryDirty</c>: set with <c>Volatile.Write</c> by <see cref="MarkDirectoryDirty"/> (the roll, after a
/// segment rename), cleared with <c>Interlocked.Exchange</c> by the flush that fsyncs the directory.</item>
/// <item><c>_syncWaiting</c>: <c>Interlocked</c> increments and decrements by sync-mode producers, read by the leader.</item>
/// <item><see cref="Segment.FullyFlushed"/> only goes false to true (under <c>_flushLock</c>); retention reads it
/// without the lock, and a stale false only delays a deletion to the next pass.</item>
/// </list>
/// <para>The frontier takes a reference on its segment only while a flush runs, so a queue that is never
/// flushed does not keep an old segment mapped.</para>
/// </remarks>
internal sealed partial class Flusher(string directory, MmapQueueOptions options, ILogger logger, SegmentList segments,
                                      Func<long> reservedEnd, Segment tail, long nextSequence)
{
    private readonly string _directory = directory;
    private readonly MmapQueueOptions _options = options;
    private readonly ILogger _logger = logger;
    private readonly SegmentList _segments = segments;
    private readonly Func<long> _reservedEnd = reservedEnd; // the queue's NextSequence: every sequence below it is reserved

    private readonly object _flushLock = new();
    // The flush frontier: every record before (_frontier, _frontierOffset), i.e. every sequence below
    // _durableSequence, is durable. Null once closed: a flush after that throws ObjectDisposedException.
    // Starts where recovery ended: its last segment (tail) at its FlushedOffset; every sequence below nextSequence.
    private Segment? _frontier = tail;
    private int _frontierOffset = (int)tail.FlushedOffset;
    private long _durableSequence = nextSequence;
    private int _directoryDirty; // 1 after a segment rename that no directory fsync has covered yet
    private readonly List<Segment> _watermarkPending = new(); // sealed segments whose header watermark is not yet on disk
    private long _flushCount;

    private int _syncWaiting;     // producers inside WaitDurable
    private int _lastGroup;       // producers waiting as the last sync-mode leader's flush ended
    private long _lastFlushTicks; // Stopwatch ticks the last flush took
    private static readonly TimeSpan GatherLimit = TimeSpan.FromMilliseconds(1);
    private static readonly long GatherLimitTicks = (long)(GatherLimit.TotalSeconds * Stopwatch.Frequency);

    private readonly object _flushEnded = new();
    private long _flushEpoch;
    private static readonly TimeSpan FollowerWaitLimit = TimeSpan.FromMilliseconds(5);

    private PeriodicWork? _interval;
    private long _giveUpClaimsAt; // Stopwatch timestamp from which every walk gives up at a claim (Dispose); 0: none

    /// <summary>The queue's open claims: a flush that gives up at one names how long it has been open.</summary>
    public OpenClaims Claims { get; init; } = new();

    /// <summary>Where flush durations are recorded (set once the queue's meter exists).</summary>
    public QueueMetrics? Metrics { get; set; }

    /// <summary>The sequence below which every record is durable (survives power loss).</summary>
    public long DurableSequence => Volatile.Read(ref _durableSequence); // pairs with the Volatile.Write in FlushUnderFlushLock

    /// <summary>A segment was renamed into place: the next flush must fsync the directory before reporting its records durable.</summary>
    public void MarkDirectoryDirty() => Volatile.Write(ref _directoryDirty, 1); // pairs with the Interlocked.Exchange in FlushUnderFlushLock

    /// <summary>
    /// Makes every sequence below <paramref name="target"/> durable (and whatever else is published by then).
    /// Concurrent callers share the work: a caller that finds the target covered returns without the lock.
    /// </summary>
    /// <exception cref="TimeoutException">A claim below the target stayed open <see cref="MmapQueueOptions.ClaimTimeout"/>;
    /// what lay before it was flushed.</exception>
    public void Flush(long target)
    {
        if (Volatile.Read(ref _durableSequence) >= target) return;
        string? stuck;
        lock (_flushLock)
        {
            if (_durableSequence >= target) return;
            stuck = FlushUnderFlushLock(target, _options.ClaimTimeout);
        }
        SignalFlushEnded();
        if (stuck is not null) throw new TimeoutException(stuck);
    }

    /// <summary>Flushes everything published now, waiting for nobody (retention, before it deletes a segment).</summary>
    public void FlushPublished()
    {
        lock (_flushLock) FlushUnderFlushLock(long.MaxValue, TimeSpan.Zero); // waits for nobody: never stuck
    }

    /// <summary>
    /// On dispose: flushes to <paramref name="reserved"/> (waiting for producers that reserved below it) and
    /// brings every header watermark, the frontier's included, to disk, so the next open needs no scan.
    /// Waits at most <paramref name="claimWait"/> at an open claim: then returns why it stopped there (the
    /// frontier and its watermark stay before the claim, so the next open walks from there), else null. When
    /// the frontier ends the queue exactly, on <paramref name="last"/>, a v2 segment whose unwritten rest is
    /// zero on disk, its header also gets CLEAN_CLOSE: the next open walks nothing.
    /// </summary>
    public string? FlushForClose(long reserved, Segment last, TimeSpan claimWait)
    {
        lock (_flushLock)
        {
            string? stuck = FlushUnderFlushLock(reserved, claimWait);
            bool clean = stuck is null && ReferenceEquals(_frontier, last) && _durableSequence == reserved && last.TailZeroOnDisk;
            PersistWatermarksUnderFlushLock(includeFrontier: true, cleanClose: clean);
            return stuck;
        }
    }

    /// <summary>
    /// Dispose: from <paramref name="timestamp"/> (a Stopwatch timestamp) on, every walk waiting at a claim gives
    /// up at once (an interval tick or sync-mode acknowledgement under way included), so Dispose waits for
    /// claims about <c>ClaimTimeout</c> in all. <c>Volatile.Write</c>, paired with the read in the walk.
    /// </summary>
    public void GiveUpClaimsAt(long timestamp) => Volatile.Write(ref _giveUpClaimsAt, timestamp);

    /// <summary>Lets go of the frontier: every later flush throws <see cref="ObjectDisposedException"/>.</summary>
    public void Close()
    {
        lock (_flushLock) _frontier = null;
    }

    /// <summary>
    /// Sync mode: returns once <paramref name="sequence"/> is durable, sharing msyncs with other producers.
    /// The first waiter leads a flush (which takes along every record already published); the others do
    /// not queue on <c>_flushLock</c> (released one by one, they would each lead a flush of about one
    /// record: a convoy) but wait for the flush to end, then return if it covered them or elect the next leader.
    /// </summary>
    public void WaitDurable(long sequence)
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
        string? stuck = null;
        // Volatile.Read pairs with the Volatile.Write of _durableSequence at the end of FlushUnderFlushLock.
        while (Volatile.Read(ref _durableSequence) <= sequence)
        {
            long epoch = Volatile.Read(ref _flushEpoch);
            if (Monitor.TryEnter(_flushLock))
            {
                try
                {
                    if (_durableSequence > sequence) return;
                    GatherGroupUnderFlushLock();
                    stuck = FlushUnderFlushLock(sequence + 1, _options.ClaimTimeout);
                    _lastGroup = Volatile.Read(ref _syncWaiting); // the producers this flush had waiting: the next group to gather
                }
                finally
                {
                    Monitor.Exit(_flushLock);
                    SignalFlushEnded();
                }
                if (stuck is not null) throw new TimeoutException(stuck);
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
    private void GatherGroupUnderFlushLock()
    {
        AssertFlushLockHeld();
        int want = _lastGroup;
        if (want <= 1) return;
        long deadline = Stopwatch.GetTimestamp() + Math.Min(_lastFlushTicks, GatherLimitTicks);
        while (_reservedEnd() - _durableSequence < want && Stopwatch.GetTimestamp() < deadline)
            Thread.Yield(); // lets the woken producers run: they append, then wait as followers
    }

    /// <summary>Wakes sync-mode producers waiting for a flush to end; call after releasing <c>_flushLock</c>.</summary>
    private void SignalFlushEnded()
    {
        lock (_flushEnded)
        {
            _flushEpoch++;
            Monitor.PulseAll(_flushEnded);
        }
    }

    /// <summary>Interval mode: flushes everything appended so far every <see cref="MmapQueueOptions.FlushInterval"/>.</summary>
    public void StartInterval()
    {
        if (_options.FlushMode != FlushMode.Interval) return;
        _interval = new PeriodicWork(_options.FlushInterval, () => Flush(_reservedEnd()),
            e => Log.BackgroundFlushFailed(_logger, _directory, e)); // the next Flush or tick tries again
    }

    /// <summary>Stops the interval timer and waits for a tick under way.</summary>
    public void StopInterval() => _interval?.Stop();

    [Conditional("DEBUG")]
    private void AssertFlushLockHeld() => Debug.Assert(Monitor.IsEntered(_flushLock), "the caller must hold the flush lock");
}
