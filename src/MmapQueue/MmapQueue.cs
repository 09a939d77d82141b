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
    private readonly string _directory;
    private readonly MmapQueueOptions _options;
    private readonly ILogger _logger;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _lock; // holds flock(LOCK_EX) on the lock file
    private readonly Guid _queueId;
    private readonly long _segmentSize;
    private readonly int _maxPayload;
    private readonly SegmentAllocator _allocator;

    private readonly object _segmentsLock = new();
    private Segment[] _segments; // copy-on-write under _segmentsLock; readers take a Volatile snapshot
    private Segment _active;     // the segment producers reserve in; replaced under _rollLock
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
            _allocator = new SegmentAllocator(_directory, _segmentSize, _options.FilePermissions, _options.Preheat, _options.LockInMemory, _logger);
            _cursors = CursorStore.Open(_directory, _queueId, _options.FilePermissions);
            RemoveLeftovers(_directory, _cursors.Snapshot.RetainedFrom, _logger);

            RecoveredQueue recovered = Recovery.Open(_directory, meta, _logger);
            if (recovered.Segments.Count == 0)
            {
                Segment first = _allocator.TakeAndActivate(0, _queueId);
                Native.Libc.FsyncDirectory(_directory);
                recovered.Segments.Add(first);
            }
            else
            {
                _allocator.HeatActive(recovered.Segments[^1]); // the writer resumes in it: heat what is left, ahead of it
                _allocator.Start();
            }
            _segments = recovered.Segments.ToArray();
            _active = _segments[^1];
            InitializeFlushState(_active, recovered.NextSequence);
            ClampCommitsPastTheEnd(recovered.NextSequence);
            Log.Opened(_logger, _directory, _segments.Length, _segments[0].BaseSequence, recovered.NextSequence,
                recovered.Scanned, started.Elapsed.TotalMilliseconds);
        }
        catch
        {
            _allocator?.Dispose();
            _cursors?.Dispose();
            _lock.Dispose();
            throw;
        }
        StartMetrics(meterFactory);
        ReportConsumerPositions(() => _cursors.Snapshot.Committed.Select(p => (p.Key, p.Value))); // mmapq.consumer.lag
        StartBackgroundFlush();
        StartAgeRetention();
        ApplyRetention();
    }

    /// <summary>The queue directory (full path).</summary>
    public string Path => _directory;

    /// <summary>The sequence the next <see cref="Enqueue(ReadOnlySpan{byte})"/> gets.</summary>
    public long NextSequence
    {
        get
        {
            Segment active = Volatile.Read(ref _active);
            return active.BaseSequence + active.ReservedTail.Records;
        }
    }

    /// <summary>The oldest sequence still stored.</summary>
    public long FirstSequence => Volatile.Read(ref _segments)[0].BaseSequence;

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

    /// <summary>Opens a reader whose first <see cref="QueueReader.TryRead"/> returns <paramref name="fromSequence"/>.</summary>
    /// <exception cref="SequenceOutOfRangeException">The sequence is not stored (before <see cref="FirstSequence"/>: retention deleted it) or not yet written (after <see cref="NextSequence"/>).</exception>
    public QueueReader OpenReader(long fromSequence = 0) => OpenReader(fromSequence, OutOfRange.Throw);

    /// <summary>
    /// Flushes everything (records become durable), stops background work, unmaps and releases the lock.
    /// Safe while other threads append: an append that reserved its place before Dispose is waited for and
    /// flushed with the rest; one that comes later throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        Segment active;
        long records, reserved;
        lock (_rollLock)
        {
            if (_disposed) return;
            _disposed = true; // Roll checks it under this lock: no segment is rolled in after this
            active = _active;
            // Sealing fails every later reservation, which then goes to Roll and throws ObjectDisposedException,
            // so no producer starts copying into the mapping unmapped below. Producers that reserved already
            // are waited for by the flush (it walks to `reserved`, waiting for each commit word).
            (records, _) = active.Seal();
            reserved = active.BaseSequence + records;
        }
        bool flushed = false;
        try
        {
            StopRetention();
            StopBackgroundFlush();
            lock (_flushLock)
            {
                FlushCoreUnsynchronized(reserved);
                PersistWatermarksUnsynchronized(includeFrontier: true); // so the next open trusts every sealed segment without a scan
            }
            flushed = true;
        }
        finally
        {
            // The flush failed before seeing every producer finish: wait for them as an index build does.
            if (!flushed) new SegmentIndex(_segmentSize).Complete(active, records);
            _allocator.Dispose();
            _frontier = null;
            Volatile.Read(ref _active).Release();
            _cursors.Dispose();
            _lock.Dispose();
            _metrics?.Dispose();
            WakeReaders();
        }
    }

    /// <summary>
    /// Test hook: stops as a process kill would. Nothing is flushed and no watermark is written; the page
    /// cache keeps every published record, exactly as after SIGKILL.
    /// </summary>
    internal void SimulateCrash()
    {
        if (_disposed) return;
        _disposed = true;
        StopRetention();
        StopBackgroundFlush();
        _allocator.Dispose();
        _frontier = null;
        Volatile.Read(ref _active).Release();
        _cursors.Dispose(); // every commit was already durable (fdatasync before Commit returned)
        _lock.Dispose();
        WakeReaders();
    }

    internal Segment[] Segments => Volatile.Read(ref _segments);

    /// <summary>The segment holding <paramref name="sequence"/> (the last whose base is at or below it), or null.</summary>
    internal Segment? FindSegment(long sequence)
    {
        Segment[] s = Volatile.Read(ref _segments);
        int lo = 0, hi = s.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (s[mid].BaseSequence <= sequence) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? null : s[found];
    }

    /// <summary>The segment whose base is exactly <paramref name="sequence"/>, or null if not (yet) there.</summary>
    internal Segment? SegmentStartingAt(long sequence)
    {
        Segment? s = FindSegment(sequence);
        return s is not null && s.BaseSequence == sequence ? s : null;
    }

    private void AddSegment(Segment segment)
    {
        lock (_segmentsLock)
        {
            var grown = new Segment[_segments.Length + 1];
            _segments.CopyTo(grown, 0);
            grown[^1] = segment;
            Volatile.Write(ref _segments, grown);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    internal bool IsDisposed => _disposed;

    /// <summary>The queue's logger, for the shipping sessions it runs (events 1040/1041).</summary>
    internal ILogger Logger => _logger;
}
