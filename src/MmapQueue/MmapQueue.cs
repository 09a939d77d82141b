using System.Diagnostics;
using System.Diagnostics.Metrics;
using MmapQueues.Format;
using MmapQueues.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MmapQueues;

/// <summary>
/// An embedded, durable, multi-producer queue stored in fixed-size, memory-mapped segment files.
/// </summary>
/// <remarks>
/// <para>Words used throughout: a record is <b>appended</b> when <see cref="Enqueue(ReadOnlySpan{byte})"/>
/// returned its sequence; <b>visible</b> when readers can see it (its commit word is published, which
/// happens before <c>Enqueue</c> returns); <b>durable</b> when it survives power loss (an msync covered it).
/// What each <see cref="FlushMode"/> loses on a process kill and on power loss is in the README.</para>
/// <para>Thread safety: <c>Enqueue</c>, <c>Flush</c> and <c>OpenReader</c> may be called from any number
/// of threads at once; <see cref="Dispose"/> too (later calls throw <see cref="ObjectDisposedException"/>). Only one <c>MmapQueue</c>, in any
/// process, may have a directory open; a second one gets an <see cref="IOException"/> naming the holder.</para>
/// </remarks>
public sealed partial class MmapQueue : IDisposable
{
    // ---- The concurrency contract (the whole queue's; each part repeats its own share in its remarks) ----
    //
    // The parts: this class keeps the append hot path (reserve, copy, publish, roll) and wires the others.
    // SegmentList (the segments, find/add/remove-prefix, the space-freed signal), Flusher (frontier, durable
    // sequence, group commit, interval timer), RetentionPolicy (deletions, DropOldest, capacity, age timer),
    // ConsumerRegistry (who holds each consumer name), SegmentIndexes (seek indexes), BackgroundWork (index builds and retention passes off
    // the writer's thread), PeriodicWork (the timer loops). Map in docs/ARCHITECTURE.md.
    //
    // Locks, in the only order they nest (a lock may be taken while holding one above it, never below):
    //   1. _rollLock (here)                  replacing _active, sealing, setting _disposed, _rolledFrameBytes
    //   2. RetentionPolicy._retentionLock    one retention pass at a time (the roll may run one for room)
    //   3. Flusher._flushLock                the frontier, _durableSequence writes, segments' flush bookkeeping
    //   4. ConsumerRegistry's open set        held across CursorStore.Remove (Remove's "not open" check and
    //                                        the removal are one step): it takes CursorStore's lock below it
    //   5. leaf locks, never held while taking another of the queue's locks:
    //      Segment._mapLock (mapping, references, deleted), SegmentList._lock, CursorStore's lock,
    //      SegmentIndex's lock, the allocator's and heater's locks, Flusher._flushEnded, _publishedLock,
    //      BackgroundWork's set.
    // Methods that need a lock held end in UnderXxxLock and assert it in debug builds.
    //
    // Lock-free fields, each store with the load it pairs with:
    //   _active           Volatile.Write in RollUnderRollLock (after the new segment is listed and the old
    //                     one's end marker written)  <->  Volatile.Read in Reserve / NextSequence / Flush.
    //   claims            Segment.StoreClaim (a plain 8-byte store of word + claim CRC) right after TryReserve wins,
    //                     in both Enqueue forms  <->  the same acquire loads below, which treat a claim as "not
    //                     yet" (nothing is ordered before it), and recovery after a kill (the page cache kept it).
    //   commit words      Segment.PublishHeader (release, word + CRC in one 8-byte store) in Append  <->
    //                     Segment.ReadWord (acquire) in every reader, the flusher's walk, index builds and the exporter.
    //   _openClaims       OpenClaims' slots: CAS / Volatile.Write by callback producers  <->  Volatile.Read by the
    //                     flusher's timeout message, Dispose and the oldest-claim gauge (OpenClaims.cs).
    //   _disposed         volatile; set under _rollLock, read anywhere (a stale false is caught by the
    //                     sealed segment: the reservation fails, Roll checks _disposed under the lock).
    //   _readersWaiting   Interlocked in WaitForPublishAsync (a full fence before its re-check)  <->  plain
    //                     Volatile.Read in AfterPublish; the race it leaves is bounded (MmapQueue.Wait.cs).
    //   notify page        the writer's AfterPublish loads the shared waiter count after the release store of the
    //                     record  <->  a reader process's Interlocked.Increment of it (SharedWakeup, remarks 1-3).
    //   SegmentList._segments, Flusher._durableSequence, CursorStore's snapshot: see their own remarks.
    //
    // A read-only queue (MmapQueueOptions.ReadOnly, MmapQueue.ReadOnly.cs) has none of the writer's parts: its own
    // locks (_tailLock, then _refreshLock; _readerWakeupLock) are leaves, and across processes it meets the writer only
    // through files: leases and readers/pass.lock (retention), notify (wake-ups), cursors.lock (commits).

    private readonly string _directory;
    private readonly MmapQueueOptions _options;
    private readonly ILogger _logger;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _lock; // holds flock(LOCK_EX) on the lock file
    private readonly Guid _queueId;
    private readonly long _segmentSize;
    private readonly int _maxPayload;
    private readonly SegmentAllocator _allocator;

    private readonly SegmentList _segments;
    private readonly Flusher _flusher;
    private readonly RetentionPolicy _retention;
    private readonly BackgroundWork _background;
    private readonly SegmentIndexes _indexes;

    private readonly object _rollLock = new();
    private Segment _active;     // the segment producers reserve in; replaced under _rollLock (Volatile pair above)
    private readonly OpenClaims _openClaims = new(); // callback claims in progress (OpenClaims.cs)
    private volatile bool _disposed;

    /// <summary>Opens the queue at <paramref name="path"/> (creating it if needed) with default options.</summary>
    public MmapQueue(string path) : this(path, new MmapQueueOptions()) { }

    /// <summary>Opens the queue at <paramref name="path"/> (creating it if needed).</summary>
    /// <exception cref="ArgumentException">An option is out of range (the message names it).</exception>
    /// <exception cref="QueueCorruptedException">A file holds bytes MmapQueue cannot have written before the torn tail.</exception>
    /// <exception cref="IOException">Another writer holds the queue, or the disk is full.</exception>
    public MmapQueue(string path, MmapQueueOptions options) : this(path, options, null) { }

    /// <summary>Opens the queue at <paramref name="path"/>, logging through <paramref name="loggerFactory"/>.</summary>
    public MmapQueue(string path, MmapQueueOptions options, ILoggerFactory? loggerFactory) : this(path, options, loggerFactory, null) { }

    /// <summary>
    /// Opens the queue at <paramref name="path"/>, logging through <paramref name="loggerFactory"/> and creating
    /// the <c>MmapQueue</c> meter (docs/METRICS.md) through <paramref name="meterFactory"/>, or a meter of its own when null.
    /// </summary>
    public MmapQueue(string path, MmapQueueOptions options, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Clone();
        _logger = (ILogger?)loggerFactory?.CreateLogger<MmapQueue>() ?? NullLogger.Instance;
        _directory = System.IO.Path.GetFullPath(path);
        var started = Stopwatch.StartNew();
        if (_options.ReadOnly)
        {
            // A reader process: no lock, no recovery, no file of the writer's written (MmapQueue.ReadOnly.cs).
            QueueDirectory.Meta meta = ReadOnlyMeta(_directory);
            _queueId = meta.QueueId;
            _segmentSize = meta.SegmentSize;
            _maxPayload = SegmentLayout.MaxPayloadFor(_segmentSize);
            _readOnly = true;
            _segments = new SegmentList(ReadOnlySegments(_directory, _segmentSize, _queueId));
            _active = ReadOnlyPlaceholder(_directory, _segmentSize); // sealed: every append goes to Roll, which refuses
            // What it creates (leases, locks, a grown cursors, notify) takes queue.meta's mode, and its owner when run as root.
            (_options.FilePermissions, uint uid, uint gid) = ReaderFileOwners.OfMeta(_directory);
            _cursors = CursorStore.Open(_directory, _queueId, _options.FilePermissions, shared: true);
            _consumers = new ConsumerRegistry(_directory, _cursors, _logger, _options.FilePermissions);
            _readerFileOwner = ReaderFileOwners.Register(_directory, uid, gid);
            _lock = null!; _allocator = null!; _flusher = null!; _retention = null!; _background = null!; _indexes = null!; // the writer's only
            Log.OpenedReadOnly(_logger, _directory, _segments.Count, _segments.First.BaseSequence, started.Elapsed.TotalMilliseconds);
            return;
        }
        QueueFiles.CreateDirectory(_directory, _options.FilePermissions);
        _lock = QueueDirectory.AcquireLock(_directory, _options.FilePermissions);
        try
        {
            var meta = QueueDirectory.OpenOrCreateMeta(_directory, _options.SegmentSizeBytes, _options.QueueIdForNewQueue, _options.FilePermissions);
            if (meta.SegmentSize != _options.SegmentSizeBytes)
                Log.SegmentSizeFromMeta(_logger, _directory, meta.SegmentSize, _options.SegmentSizeBytes);
            _queueId = meta.QueueId;
            _segmentSize = meta.SegmentSize;
            _maxPayload = SegmentLayout.MaxPayloadFor(_segmentSize);
            if (_options.MaxQueueSizeBytes > 0 && _options.MaxQueueSizeBytes < 2 * _segmentSize)
                throw new ArgumentException($"MaxQueueSizeBytes must be at least two segments ({2 * _segmentSize} bytes with the segment size " +
                                            $"{_segmentSize} of queue {_directory}); found {_options.MaxQueueSizeBytes}.", nameof(options));
            _allocator = new SegmentAllocator(_directory, _segmentSize, _options.FilePermissions, _options.Preheat, _options.LockInMemory, _logger,
                recycle: _options.RecycleSegments);
            _cursors = CursorStore.Open(_directory, _queueId, _options.FilePermissions, shared: true, // reader processes commit too
                lockWait: Processes.FileLocks.WriterWait); // the writer never waits without bound for a reader's lock
            _sharedWakeup = OpenWriterWakeup(_directory, _options.FilePermissions, _logger); // before any publish: reader processes wait on it
            _cursors.UnderCommitLock(() => RetentionPolicy.RemoveLeftovers(_directory, _cursors.Snapshot.RetainedFrom, _logger)); // no reader process mid-commit

            RecoveredQueue recovered = Recovery.Open(_directory, meta, _logger);
            if (recovered.Segments.Count == 0)
            {
                // At the retention floor, not 0: with every segment file gone (cleared by hand, or renames a crash
                // lost after retention's unlinks), segments below the floor would be deleted by the next open.
                Segment first = _allocator.TakeAndActivate(_cursors.Snapshot.RetainedFrom, _queueId);
                Native.Libc.FsyncDirectory(_directory);
                recovered.Segments.Add(first);
                recovered = recovered with { NextSequence = first.BaseSequence };
            }
            else
            {
                _allocator.HeatActive(recovered.Segments[^1]); // the writer resumes in it: heat what is left, ahead of it
                _allocator.Start();
            }
            _segments = new SegmentList(recovered.Segments.ToArray());
            _active = recovered.Segments[^1];
            _flusher = new Flusher(_directory, _options, _logger, _segments, () => NextSequence, _active, recovered.NextSequence)
            {
                Claims = _openClaims,
            };
            _consumers = new ConsumerRegistry(_directory, _cursors, _logger, _options.FilePermissions);
            _consumers.ClampPastTheEnd(recovered.NextSequence);
            Log.Opened(_logger, _directory, recovered.Segments.Count, recovered.Segments[0].BaseSequence, recovered.NextSequence,
                recovered.Scanned, started.Elapsed.TotalMilliseconds);
        }
        catch
        {
            _allocator?.Dispose();
            _cursors?.Dispose();
            _sharedWakeup?.Dispose(); // nothing was published: no producer can be using it
            _lock.Dispose();
            throw;
        }
        _background = new BackgroundWork(_directory, _logger);
        _retention = new RetentionPolicy(_directory, _options, _segmentSize, _logger, _segments, _cursors, _flusher, _background,
            _allocator, () => NextSequence, ReportDropped);
        _indexes = new SegmentIndexes(_segmentSize, _queueId, _options.FilePermissions, _logger, _segments, _background, _retention.Schedule);
        try
        {
            StartMetrics(meterFactory);
            _flusher.Metrics = _metrics;
            ReportConsumerPositions(() => _cursors.Snapshot.Committed.Select(p => (p.Key, p.Value))); // mmapq.consumer.lag
            _flusher.StartInterval();
            _retention.StartAgeTimer();
            _retention.Apply();
        }
        catch
        {
            // The queue is whole by now: close it as Dispose does (timers, spare, mappings, the lock), or the
            // directory would stay locked by an object the caller never gets.
            Dispose();
            throw;
        }
    }

    /// <summary>The queue directory (full path).</summary>
    public string Path => _directory;

    /// <summary>The sequence the next <see cref="Enqueue(ReadOnlySpan{byte})"/> gets.</summary>
    public long NextSequence
    {
        get
        {
            if (_readOnly) return ReadOnlyNextSequence();
            Segment active = Volatile.Read(ref _active);
            return active.BaseSequence + active.ReservedTail.Records;
        }
    }

    /// <summary>The oldest sequence still stored.</summary>
    /// <remarks>On a read-only queue each call lists the directory first (the writer may have deleted segments).</remarks>
    public long FirstSequence => (_readOnly ? RefreshSegments() : _segments).First.BaseSequence;

    /// <summary>The largest payload one record can carry with this queue's segment size.</summary>
    public int MaxPayloadBytes => _maxPayload;

    /// <summary>The options in force (a copy; the segment size comes from the queue if it already existed).</summary>
    public MmapQueueOptions Options
    {
        get
        {
            var copy = _options.Clone();
            copy.SegmentSizeBytes = _segmentSize;
            return copy;
        }
    }

    /// <summary>The sequence below which every record is durable (survives power loss).</summary>
    /// <exception cref="InvalidOperationException">The queue is open read-only (durability is the writer's to know).</exception>
    public long DurableSequence => _readOnly ? throw ReadOnlyError("DurableSequence") : _flusher.DurableSequence;

    /// <summary>
    /// Makes every record appended before this call durable: msync(MS_SYNC) of the dirty ranges of every
    /// segment written since the last flush, and an fsync of the directory if segments were created.
    /// Concurrent callers share the work (group commit): one msync covers everything published so far.
    /// </summary>
    /// <exception cref="IOException">msync or fsync failed; nothing is reported durable that was not synced.</exception>
    /// <exception cref="InvalidOperationException">The queue is open read-only.</exception>
    public void Flush()
    {
        ThrowIfDisposed();
        if (_readOnly) throw ReadOnlyError(nameof(Flush));
        _flusher.Flush(NextSequence);
    }

    /// <summary>
    /// Records deleted by a limit (<see cref="MmapQueueOptions.MaxQueueSizeBytes"/> with
    /// <see cref="QueueFullPolicy.DropOldest"/>, or <see cref="MmapQueueOptions.RetentionAge"/>) before every
    /// named consumer had committed past them; with no named consumers, every record a limit deleted.
    /// Counted since this queue object was opened; each drop is also logged as a warning.
    /// </summary>
    public long DroppedRecords => _readOnly ? 0 : _retention.DroppedRecords;

    /// <summary>Opens a reader whose first <see cref="QueueReader.TryRead"/> returns <paramref name="fromSequence"/>.</summary>
    /// <exception cref="SequenceOutOfRangeException">The sequence is not stored (before <see cref="FirstSequence"/>: retention deleted it) or not yet written (after <see cref="NextSequence"/>).</exception>
    public QueueReader OpenReader(long fromSequence = 0) => OpenReader(fromSequence, OutOfRange.Throw);

    /// <summary>
    /// Flushes everything (records become durable), stops background work, unmaps and releases the lock.
    /// Safe while other threads append: an append that reserved its place before Dispose is waited for and
    /// flushed with the rest; one that comes later throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    /// <remarks>
    /// An <see cref="Enqueue{TState}"/> callback still running is waited for at most
    /// <see cref="MmapQueueOptions.ClaimTimeout"/> (one deadline for every wait Dispose makes). Past that, Dispose logs an error (event 1023), flushes what lies
    /// before the claim, and leaves the claim's segment mapped (a leak until the process exits) so the callback can
    /// never write into unmapped memory. Records appended after the claim are in the page cache but not flushed by
    /// this Dispose; the next open reads the claim as an aborted record and keeps them.
    /// </remarks>
    public void Dispose()
    {
        if (_readOnly)
        {
            DisposeReadOnly();
            return;
        }
        Segment active;
        long records, reserved;
        lock (_rollLock)
        {
            if (_disposed) return;
            _disposed = true; // Roll checks it under this lock: no segment is rolled in after this
            _retention.MarkClosed();
            _background.Close();
            active = _active;
            // Sealing fails every later reservation, which then goes to Roll and throws ObjectDisposedException,
            // so no producer starts copying into the mapping unmapped below. Producers that reserved already
            // are waited for by the flush (it walks to `reserved`, waiting for each commit word).
            (records, _) = active.Seal();
            reserved = active.BaseSequence + records;
        }
        bool flushed = false;
        string? stuck = null;
        try
        {
            // Every wait for a claim ends by one deadline, ClaimTimeout from now: index builds (they wait for claims in
            // the segment they index), an interval tick under way, and the final flush (claims below `reserved`).
            // A callback that never returns must not hang Dispose.
            _flusher.GiveUpClaimsAt(Stopwatch.GetTimestamp() + (long)(_options.ClaimTimeout.TotalSeconds * Stopwatch.Frequency));
            StopBackgroundWork(_options.ClaimTimeout);
            // The watermarks too (and CLEAN_CLOSE on the tail when nothing is left open): the next open walks nothing.
            stuck = _flusher.FlushForClose(reserved, active, _options.ClaimTimeout);
            flushed = stuck is null;
            if (flushed && !active.TailZeroOnDisk)
            {
                // A recycled active segment holds its previous lap's frames on disk past the records (zeroed only in
                // memory): make them zeros on disk, then the second flush (nothing left to write) sets CLEAN_CLOSE,
                // which promises that nothing past the watermark is stale.
                try
                {
                    SegmentFiles.ZeroTailOnDisk(active, active.ReservedTail.End);
                    _flusher.FlushForClose(reserved, active, _options.ClaimTimeout);
                }
                catch (IOException e)
                {
                    // Only CLEAN_CLOSE is lost (ZERO_RANGE can fail with ENOSPC on a full disk, or EIO): every record
                    // is durable already, and without the flag the next open walks the tail and zeroes what is stale.
                    Log.TailZeroFailed(_logger, active.Path, e.Message);
                }
            }
        }
        finally
        {
            // The flush failed before seeing every producer finish: wait for them as an index build does. If a
            // corrupt frame (bytes written into the mapping from outside) hides whether they finished, or a claim
            // stayed open past ClaimTimeout, the mapping is kept (leaked until the process exits) rather than
            // unmapped under a producer still writing; the flush's exception propagates.
            bool producersDone = flushed || (stuck is null && new SegmentIndex(_segmentSize).TryComplete(active, records));
            if (stuck is not null) Log.ClaimOpenAtClose(_logger, _directory, stuck);
            _allocator.Dispose();
            _flusher.Close();
            ReleaseKeptMappings();
            if (producersDone) Volatile.Read(ref _active).Release();
            _consumers.ReleaseOwnerships();
            _cursors.Dispose();
            if (stuck is null) _lock.Dispose();
            else KeepUntilExit(_lock); // see below
            _metrics?.Dispose();
            WakeReaders();
            CloseWriterWakeup();
        }
    }

    // A claim still open when Dispose gave up keeps the writer's lock, as it keeps its mapping, until the process
    // exits: a new open (in this process or another) would turn the claim into an aborted record while the old
    // callback still writes into the same file through its mapping. Rooted here, so no finalizer closes the lock.
    private static readonly List<IDisposable> s_keptUntilExit = [];

    private static void KeepUntilExit(IDisposable resource)
    {
        lock (s_keptUntilExit) s_keptUntilExit.Add(resource);
    }

    /// <summary>
    /// Test hook: stops as a process kill would. Nothing is flushed and no watermark is written; the page
    /// cache keeps every published record, exactly as after SIGKILL.
    /// </summary>
    internal void SimulateCrash()
    {
        lock (_rollLock)
        {
            if (_disposed) return;
            _disposed = true;
            _retention.MarkClosed();
            _background.Close();
        }
        StopBackgroundWork(_options.ClaimTimeout);
        _allocator.Dispose();
        _flusher.Close();
        ReleaseKeptMappings();
        Volatile.Read(ref _active).Release();
        _consumers.ReleaseOwnerships();
        _cursors.Dispose(); // every commit was already durable (fdatasync before Commit returned)
        _lock.Dispose();
        WakeReaders();
        CloseWriterWakeup();
    }

    /// <summary>
    /// Stops the timers and waits for background work (index builds, retention passes), then wakes producers
    /// blocked on a full queue: they see it disposed and throw. Call once <see cref="_disposed"/> is set.
    /// Background work still running after <paramref name="claimWait"/> (an index build waiting at a claim that
    /// stays open) is left running: it holds its segment's mapping until the claim is published.
    /// </summary>
    private void StopBackgroundWork(TimeSpan claimWait)
    {
        _retention.StopAgeTimer();
        _background.WaitAll(claimWait);
        _retention.WaitForRunningPass();
        _segments.WakeSpaceWaiters();
        _flusher.StopInterval();
    }

    /// <summary>Unmaps the idle mappings recycling kept (background work is stopped: nothing takes a reference any more but readers, which unmap when they let go).</summary>
    private void ReleaseKeptMappings()
    {
        foreach (Segment s in _segments.Snapshot) s.KeepMappingWhenIdle(false);
    }

    internal Segment[] Segments => _segments.Snapshot;

    /// <summary>The segment holding <paramref name="sequence"/> (the last whose base is at or below it), or null.</summary>
    internal Segment? FindSegment(long sequence) => _segments.Find(sequence);

    /// <summary>The segment whose base is exactly <paramref name="sequence"/>, or null if not (yet) there.</summary>
    internal Segment? SegmentStartingAt(long sequence) =>
        _segments.StartingAt(sequence) ?? (_readOnly ? RefreshSegments().StartingAt(sequence) : null);

    /// <summary>The segment listed after <paramref name="seg"/>, or null if it is the last (or no longer listed).</summary>
    internal Segment? SegmentStartingAfter(Segment seg) => _segments.After(seg);

    /// <summary>Deletes the segments retention allows now; returns how many (tests, and after commits).</summary>
    internal int ApplyRetention() => _readOnly ? 0 : _retention.Apply();

    /// <summary>Rolls that reused a segment retention had freed (<see cref="MmapQueueOptions.RecycleSegments"/>).</summary>
    internal long RecycledRolls => _allocator.RecycledTaken;

    /// <summary>Spares activated (rolls, and a new queue's first segment).</summary>
    internal long SparesTaken => _allocator.Taken;

    /// <summary>Waits for index builds, retention passes and spares started so far (tests that count mappings or files).</summary>
    internal void WaitForBackgroundWork()
    {
        _background.WaitAll();
        _allocator.WaitForSpares(); // a recycled spare is renamed and cleaned by then
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    internal bool IsDisposed => _disposed;

    /// <summary>The queue's logger, for the shipping sessions it runs (events 1040/1041).</summary>
    internal ILogger Logger => _logger;
}
