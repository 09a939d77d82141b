using System.Diagnostics;

namespace MmapQueues;

internal sealed partial class RetentionPolicy
{
    /// <summary>
    /// True when one more segment fits under <see cref="MmapQueueOptions.MaxQueueSizeBytes"/>, after a
    /// retention pass if needed (the caller, the roll, holds the roll lock). <paramref name="spaceFreed"/> is
    /// taken before the check, so a deletion that lands after it completes that task and a producer waiting
    /// on it cannot miss the wake-up.
    /// </summary>
    public bool HasRoomForNextSegment(out Task spaceFreed)
    {
        spaceFreed = _segments.SpaceFreed;
        long max = _options.MaxQueueSizeBytes;
        if (max == 0 || (_segments.Count + 1L) * _segmentSize <= max) return true;
        Apply();
        return (_segments.Count + 1L) * _segmentSize <= max;
    }

    /// <summary>Block policy: waits (outside the roll lock) for retention to free a segment, the deadline, or cancellation.</summary>
    public void WaitForSpace(Task spaceFreed, ref long giveUpAt, CancellationToken cancellationToken)
    {
        TimeSpan timeout = _options.FullBlockTimeout;
        if (giveUpAt == 0)
        {
            Log.ProducerBlocked(_logger, _directory, _segments.Count * _segmentSize, _options.MaxQueueSizeBytes, timeout);
            giveUpAt = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue
                : Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        }
        int waitMs = Timeout.Infinite;
        if (giveUpAt != long.MaxValue)
        {
            long left = giveUpAt - Stopwatch.GetTimestamp();
            if (left <= 0) throw FullException($"; waited FullBlockTimeout {timeout} for consumers to free space");
            waitMs = (int)Math.Min(int.MaxValue, Math.Ceiling(left * 1000.0 / Stopwatch.Frequency));
        }
        spaceFreed.Wait(waitMs, cancellationToken); // false on timeout: the caller checks again, then gives up above
    }

    /// <summary>The error of a full queue: the limit, the segments in use, and the slowest consumer holding them.</summary>
    public QueueFullException FullException(string waited)
    {
        var cursors = _cursors.Snapshot.Committed;
        string slowest = cursors.Count == 0
            ? "no named consumer is registered, so only RetentionAge frees segments"
            : cursors.MinBy(p => p.Value) is var (name, at) ? $"the slowest consumer '{name}' has committed up to {at} of {_nextSequence()}" : "";
        return new QueueFullException(
            $"Queue {_directory} is full: MaxQueueSizeBytes is {_options.MaxQueueSizeBytes} ({_segments.Count} segments of " +
            $"{_segmentSize} bytes in use) and FullPolicy is {_options.FullPolicy}{waited}; {slowest}. Commit consumers " +
            "(retention then deletes what they all read), raise MaxQueueSizeBytes, or choose FullPolicy.DropOldest.",
            _options.MaxQueueSizeBytes, _options.FullPolicy);
    }
}
