namespace MmapQueues.Tests;

/// <summary>The one options factory of the test projects: small segments, so a few records roll, and no preheat.</summary>
public static class TestOptions
{
    /// <summary>64 KiB segments, <see cref="FlushMode.Async"/> (tests flush when they mean to), no preheat.</summary>
    public static MmapQueueOptions Small(FlushMode mode = FlushMode.Async, long segmentSize = 64 * 1024, Action<MmapQueueOptions>? change = null)
    {
        var o = new MmapQueueOptions { SegmentSizeBytes = segmentSize, FlushMode = mode, Preheat = false };
        change?.Invoke(o);
        return o;
    }
}
