using Microsoft.Extensions.Logging;

namespace MmapQueues.Storage;

/// <summary>
/// Keeps the next segment ready in the background: created, preallocated and mapped before the writer fills
/// the current one (and preheated by <see cref="SegmentHeater"/>, which goes on while the writer uses it), so
/// a roll costs the writer a header write, an msync of one page and a rename. One spare at a time
/// (<c>next.seg.{random}.tmp</c>).
/// </summary>
/// <remarks>
/// Opening an existing queue only starts the spare (<see cref="Start"/>); the first roll waits for it if it is
/// not ready. <see cref="Dispose"/> cancels a spare not yet started and waits only for a creation under way
/// (fallocate and mmap, never its heating, which it stops), so that it can delete the file it made.
/// </remarks>
internal sealed class SegmentAllocator : IDisposable
{
    private readonly string _directory;
    private readonly long _segmentSize;
    private readonly UnixFileMode _fileMode;
    private readonly bool _preheat, _lockInMemory;
    private readonly ILogger _logger;
    private readonly SegmentHeater _heater;
    private Task<Segment>? _pending;
    private readonly CancellationTokenSource _closing = new();

    public SegmentAllocator(string directory, long segmentSize, UnixFileMode fileMode, bool preheat, bool lockInMemory, ILogger logger)
    {
        _directory = directory;
        _segmentSize = segmentSize;
        _fileMode = fileMode;
        _preheat = preheat;
        _lockInMemory = lockInMemory;
        _logger = logger;
        _heater = new SegmentHeater(lockInMemory, logger);
    }

    /// <summary>Heats the rest of a recovered tail segment from where the writer resumes.</summary>
    public void HeatActive(Segment active) => _heater.HeatInBackground(active, _preheat);

    /// <summary>Starts preparing the spare (no-op if one is under way).</summary>
    public void Start() => _pending ??= Task.Run(() => Create(_closing.Token), _closing.Token);

    /// <summary>
    /// Takes the spare, waiting if it is not ready, names it for <paramref name="baseSequence"/>, and starts
    /// preparing the next. If the background attempt failed (a full disk), tries once more now, so freeing
    /// space lets appends resume; a second failure is thrown to the appender.
    /// </summary>
    public Segment TakeAndActivate(long baseSequence, Guid queueId)
    {
        Task<Segment>? pending = _pending;
        _pending = null;
        Segment spare;
        if (pending is null)
        {
            spare = Create(CancellationToken.None);
        }
        else
        {
            try
            {
                spare = pending.GetAwaiter().GetResult();
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
            Drop(spare);
            throw;
        }
        Start();
        return spare;
    }

    private Segment Create(CancellationToken closing)
    {
        Segment spare = SegmentFiles.CreateSpare(_directory, _segmentSize, _fileMode);
        if (closing.IsCancellationRequested)
        {
            // Dispose came while the file was made: it is waiting for this task, and deletes nothing it does not get.
            Drop(spare);
            closing.ThrowIfCancellationRequested();
        }
        bool populate = _preheat && SegmentHeater.HeatBeforeUse(spare);
        _heater.HeatInBackground(spare, populate);
        return spare;
    }

    private static void Drop(Segment spare)
    {
        spare.Release();
        QueueFiles.Delete(spare.Path);
    }

    /// <summary>
    /// Cancels a spare not yet started, waits for one being created (never for its heating, which the heater
    /// stops), and deletes its file: no <c>next.seg.*.tmp</c> is left behind.
    /// </summary>
    public void Dispose()
    {
        Task<Segment>? pending = _pending;
        _pending = null;
        _closing.Cancel();
        if (pending is not null) pending.ContinueWith(static _ => { }, TaskScheduler.Default).Wait(); // let a Create under way finish queueing
        _heater.Dispose();
        _closing.Dispose();
        if (pending is null || pending.IsCanceled) return;
        Segment spare;
        try
        {
            spare = pending.GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            Log.SpareFailed(_logger, e.Message); // nothing was appended to a spare: only worth a log line
            return;
        }
        Drop(spare);
    }
}
