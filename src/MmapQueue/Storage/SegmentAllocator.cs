using MmapQueues.Native;
using Microsoft.Extensions.Logging;

namespace MmapQueues.Storage;

/// <summary>
/// Keeps the next segment ready in the background, so a roll costs the writer a header write, an msync of one
/// page and a rename. A spare is either fresh (created, preallocated and mapped before the writer fills the
/// current segment, and preheated by <see cref="SegmentHeater"/>, which goes on while the writer uses it) or,
/// with <see cref="MmapQueueOptions.RecycleSegments"/>, a segment retention freed (<see cref="Recycle"/>):
/// renamed, mapped and zeroed in memory off the writer's thread, its pages still cached. At most
/// <see cref="MaxSpares"/> spares at a time (<c>next.seg.{random}.tmp</c>).
/// </summary>
/// <remarks>
/// <para><b>Open and close.</b> Opening an existing queue only starts a spare (<see cref="Start"/>); the first roll
/// waits for it if it is not ready. <see cref="Dispose"/> cancels a fresh spare not yet started and waits only for
/// a creation or cleaning under way (never for heating, which it stops), so that it can delete the file.</para>
/// <para><b>Which spare a roll takes.</b> A recycled spare that is ready, else the oldest ready one, else it
/// waits for the oldest (a failed one is replaced by a fresh spare made on the spot, as before). A fresh spare is made only when none is left (<see cref="Start"/>). So in steady
/// state (a consumer keeping up) rolls take recycled segments, one fresh spare waits as a reserve, and no
/// page of the write path is new to the page cache.</para>
/// <para><b>Concurrency.</b> <c>_lock</c> is a leaf: it guards <c>_spares</c> and <c>_disposed</c> and is never held
/// while taking another lock or waiting. The roll (under the queue's roll lock) takes spares; retention (under its
/// own lock) offers recycled ones; each spare's preparation runs as a task whose completion is the happens-before
/// edge between its background stores (the header-less zeros) and the writer that activates it.</para>
/// </remarks>
internal sealed class SegmentAllocator : IDisposable
{
    /// <summary>Spare files kept at most, fresh and recycled together (a fresh reserve and two recycled); a freed segment beyond that is deleted.</summary>
    public const int MaxSpares = 3;

    private readonly string _directory;
    private readonly long _segmentSize;
    private readonly UnixFileMode _fileMode;
    private readonly bool _preheat, _recycle;
    private readonly ILogger _logger;
    private readonly SegmentHeater _heater;
    private readonly object _lock = new();
    private readonly List<Spare> _spares = new(); // oldest first
    private bool _disposed;
    private volatile bool _stopping; // ends a cleaning under way at Dispose
    private long _taken, _recycledTaken;
    private readonly CancellationTokenSource _closing = new(); // cancels a fresh spare not yet started, at Dispose

    private sealed record Spare(Task<Segment> Ready, bool Recycled);

    public SegmentAllocator(string directory, long segmentSize, UnixFileMode fileMode, bool preheat, bool lockInMemory, ILogger logger,
                            bool recycle = false)
    {
        _directory = directory;
        _segmentSize = segmentSize;
        _fileMode = fileMode;
        _preheat = preheat;
        _recycle = recycle;
        _logger = logger;
        _heater = new SegmentHeater(lockInMemory, logger);
    }

    /// <summary>Rolls that took a recycled spare so far (tests, the crash child and benchmarks show recycling happened).</summary>
    public long RecycledTaken => Interlocked.Read(ref _recycledTaken);

    /// <summary>Spares activated so far, fresh and recycled (a new queue's first segment included).</summary>
    public long Taken => Interlocked.Read(ref _taken);

    /// <summary>Heats the rest of a recovered tail segment from where the writer resumes.</summary>
    public void HeatActive(Segment active) => _heater.HeatInBackground(active, _preheat);

    /// <summary>Starts preparing a fresh spare when none is ready or under way.</summary>
    public void Start()
    {
        lock (_lock)
            if (!_disposed && _spares.Count == 0) _spares.Add(new Spare(Task.Run(() => Create(_closing.Token), _closing.Token), Recycled: false));
    }

    /// <summary>True when retention should hand its next freed segment to <see cref="Recycle"/> rather than delete it.</summary>
    public bool WantsRecycled
    {
        get { lock (_lock) return _recycle && !_disposed && _spares.Count < MaxSpares; }
    }

    /// <summary>
    /// Takes <paramref name="path"/>, the file of a segment retention retired (<see cref="Segment.TryRetireForRecycling"/>)
    /// and renamed (<see cref="SegmentFiles.RenameForRecycling"/>), with its mapping if it was kept (<paramref name="parked"/>),
    /// and prepares it as a spare in the background (<see cref="SegmentFiles.OpenRecycled"/>, <see cref="SegmentFiles.Clean"/>).
    /// Called only by retention, one pass at a time, after <see cref="WantsRecycled"/> said yes.
    /// </summary>
    public void Recycle(string path, MappedRegion? parked)
    {
        var ready = Task.Factory.StartNew(() => PrepareRecycled(path, parked), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        lock (_lock)
        {
            if (!_disposed)
            {
                _spares.Add(new Spare(ready, Recycled: true));
                return;
            }
        }
        DropWhenDone(ready); // disposed meanwhile (retention is closed first, so not expected): no leak either way
    }

    private Segment PrepareRecycled(string path, MappedRegion? parked)
    {
        Segment spare = SegmentFiles.OpenRecycled(path, _segmentSize, parked);
        bool cleaned = SegmentFiles.Clean(spare, () => _stopping);
        Log.SpareRecycled(_logger, spare.Path, cleaned);
        if (cleaned)
        {
            _heater.HeatInBackground(spare, populate: false); // nothing to fault in any more; mlocks it with LockInMemory
            return spare;
        }
        // Dispose came first: a spare with a previous lap's frames must never be handed out. Nobody will.
        spare.Release();
        QueueFiles.Delete(spare.Path);
        throw new OperationCanceledException($"The queue closed while {spare.Path} was being cleaned.");
    }

    /// <summary>
    /// Takes a spare (see the remarks for which), waiting if none is ready, names it for <paramref name="baseSequence"/>,
    /// and starts a fresh one if none is left. If the background attempt failed (a full disk), tries once more
    /// now, so freeing space lets appends resume; a second failure is thrown to the appender.
    /// </summary>
    public Segment TakeAndActivate(long baseSequence, Guid queueId)
    {
        Spare? chosen;
        lock (_lock)
        {
            chosen = _spares.Find(s => s.Recycled && s.Ready.IsCompletedSuccessfully)
                  ?? _spares.Find(s => s.Ready.IsCompletedSuccessfully)
                  ?? (_spares.Count > 0 ? _spares[0] : null);
            if (chosen is not null) _spares.Remove(chosen);
        }
        Segment spare;
        if (chosen is null)
        {
            spare = Create(CancellationToken.None);
        }
        else
        {
            try
            {
                spare = chosen.Ready.GetAwaiter().GetResult(); // completion orders the cleaning's stores before ours
            }
            catch (IOException e)
            {
                Log.SpareFailed(_logger, e.Message);
                spare = Create(CancellationToken.None);
            }
        }
        try
        {
            SegmentFiles.Activate(spare, _directory, baseSequence, queueId);
        }
        catch (IOException)
        {
            // The header msync or the rename failed: the spare is still a temporary file. Drop it (its mapping
            // and file) so the next roll starts from a fresh one instead of leaking this one; then report.
            spare.Release();
            QueueFiles.Delete(spare.Path);
            throw;
        }
        Interlocked.Increment(ref _taken);
        if (!spare.TailZeroOnDisk) Interlocked.Increment(ref _recycledTaken); // only recycled spares start with stale bytes on disk
        Start();
        return spare;
    }

    /// <summary>Waits until every spare under way is ready or failed (tests that check which file a roll takes).</summary>
    public void WaitForSpares()
    {
        Task[] tasks;
        lock (_lock) tasks = _spares.Select(s => (Task)s.Ready).ToArray();
        foreach (Task t in tasks) t.ContinueWith(static _ => { }, TaskScheduler.Default).Wait();
    }

    private Segment Create(CancellationToken closing)
    {
        Segment spare = SegmentFiles.CreateSpare(_directory, _segmentSize, _fileMode);
        if (closing.IsCancellationRequested)
        {
            // Dispose came while the file was made: it is waiting for this task, and deletes nothing it does not get.
            spare.Release();
            QueueFiles.Delete(spare.Path);
            closing.ThrowIfCancellationRequested();
        }
        bool populate = _preheat && SegmentHeater.HeatBeforeUse(spare);
        _heater.HeatInBackground(spare, populate);
        return spare;
    }

    public void Dispose()
    {
        Spare[] spares;
        lock (_lock)
        {
            _disposed = true;
            spares = _spares.ToArray();
            _spares.Clear();
        }
        _stopping = true;
        _closing.Cancel(); // a fresh spare not started yet never starts; one under way finishes and is dropped below
        foreach (Spare s in spares) s.Ready.ContinueWith(static _ => { }, TaskScheduler.Default).Wait(); // let a Create under way finish queueing
        _heater.Dispose(); // stops heating: Dispose never waits for a spare's heating
        _closing.Dispose();
        foreach (Spare s in spares) Drop(s.Ready);
    }

    /// <summary>Unmaps and deletes a spare nobody will take; a failed preparation is only worth a log line (nothing was appended to it).</summary>
    private void Drop(Task<Segment> ready)
    {
        Segment spare;
        try
        {
            spare = ready.GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            Log.SpareFailed(_logger, e.Message);
            return;
        }
        catch (OperationCanceledException)
        {
            return; // a recycled spare whose cleaning Dispose stopped: already deleted
        }
        spare.Release();
        QueueFiles.Delete(spare.Path);
    }

    private void DropWhenDone(Task<Segment> ready) =>
        ready.ContinueWith(t => Drop(t), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
}
