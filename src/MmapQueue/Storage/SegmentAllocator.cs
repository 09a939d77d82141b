using Microsoft.Extensions.Logging;

namespace MmapQueues.Storage;

/// <summary>
/// Keeps the next segment ready in the background: created, preallocated and mapped before the writer fills
/// the current one (and preheated by <see cref="SegmentHeater"/>, which goes on while the writer uses it), so
/// a roll costs the writer a header write, an msync of one page and a rename. One spare at a time
/// (<c>next.seg.{random}.tmp</c>).
/// </summary>
internal sealed class SegmentAllocator : IDisposable
{
    private readonly string _directory;
    private readonly long _segmentSize;
    private readonly UnixFileMode _fileMode;
    private readonly bool _preheat, _lockInMemory;
    private readonly ILogger _logger;
    private readonly SegmentHeater _heater;
    private Task<Segment>? _pending;

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
    public void Start() => _pending ??= Task.Run(Create);

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
            spare = Create();
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
                spare = Create();
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
        Start();
        return spare;
    }

    private Segment Create()
    {
        Segment spare = SegmentFiles.CreateSpare(_directory, _segmentSize, _fileMode);
        bool populate = _preheat && SegmentHeater.HeatBeforeUse(spare);
        _heater.HeatInBackground(spare, populate);
        return spare;
    }

    public void Dispose()
    {
        Task<Segment>? pending = _pending;
        _pending = null;
        if (pending is not null) pending.ContinueWith(static _ => { }, TaskScheduler.Default).Wait(); // let Create finish queueing
        _heater.Dispose();
        if (pending is null) return;
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
        spare.Release();
        QueueFiles.Delete(spare.Path);
    }
}
