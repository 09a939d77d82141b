using Microsoft.Extensions.Logging;

namespace MmapQueues.Storage;

/// <summary>
/// Preheats segments on one background worker, in the order given: the segment the writer is on, then the
/// spare. It faults pages in for writing a chunk at a time, always from just ahead of the writer, and
/// stops when the segment is sealed; so the writer can enter a segment that is still being heated instead
/// of waiting for all of it (benchmarks/RESULTS.md: heating runs at the kernel's page-cache zero-fill
/// rate, 2-3 GB/s here, slower than the writer). When the writer catches up, it takes those faults itself.
/// </summary>
/// <remarks>
/// Heating a range the writer is appending to is safe: <c>MADV_POPULATE_WRITE</c> changes no byte. On a
/// kernel without it, <see cref="HeatBeforeUse"/> does the whole segment with stores, before the
/// writer may touch it. The worker holds its own reference on each segment, so a segment the writer
/// leaves stays mapped until the worker is done with it.
/// </remarks>
internal sealed class SegmentHeater : IDisposable
{
    private const long ChunkBytes = 2 << 20;
    private static int _populateWriteSupported = -1; // -1 unknown, 0 no, 1 yes: probed on the first spare

    private readonly bool _lockInMemory;
    private readonly ILogger _logger;
    private readonly object _queueLock = new();
    private Task _last = Task.CompletedTask;
    private volatile bool _stopping;

    public SegmentHeater(bool lockInMemory, ILogger logger)
    {
        _lockInMemory = lockInMemory;
        _logger = logger;
    }

    /// <summary>
    /// Makes a new spare safe to hand over: probes <c>MADV_POPULATE_WRITE</c> once, and without it heats the
    /// whole segment now (the store fallback must not race with the writer). Returns true when the spare
    /// still wants <see cref="HeatInBackground"/>.
    /// </summary>
    public static bool HeatBeforeUse(Segment spare)
    {
        if (Volatile.Read(ref _populateWriteSupported) < 0)
            Volatile.Write(ref _populateWriteSupported, spare.Region.TryPopulateWrite(0, Environment.SystemPageSize) ? 1 : 0);
        if (_populateWriteSupported == 1) return true;
        spare.Region.TouchPages(0, spare.Size);
        return false;
    }

    /// <summary>Queues <paramref name="segment"/> for heating (from the writer's position) and, if asked, mlock.</summary>
    public void HeatInBackground(Segment segment, bool populate)
    {
        if (!populate && !_lockInMemory) return;
        segment.Acquire(); // released by Heat
        lock (_queueLock)
            _last = _last.ContinueWith(_ => Heat(segment, populate), CancellationToken.None,
                TaskContinuationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Heat(Segment segment, bool populate)
    {
        try
        {
            long offset = 0;
            while (populate && offset < segment.Size && !_stopping && !segment.IsSealed)
            {
                offset = Math.Max(offset, segment.ReservedTail.End); // what the writer reached, it faulted itself
                long length = Math.Min(ChunkBytes, segment.Size - offset);
                if (length <= 0) break;
                segment.Region.TryPopulateWrite(offset, length);
                offset += length;
            }
            if (_lockInMemory && !_stopping) segment.Region.Lock(segment.Path);
        }
        catch (IOException e)
        {
            Log.PreheatFailed(_logger, segment.Path, e.Message); // the writer takes its own faults: slower, not wrong
        }
        finally
        {
            segment.Release();
        }
    }

    /// <summary>Stops heating and waits for the worker to let go of its segments.</summary>
    public void Dispose()
    {
        _stopping = true;
        Task last;
        lock (_queueLock) last = _last;
        last.Wait();
    }
}
