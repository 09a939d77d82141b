using System.Diagnostics.Metrics;
using MmapQueues.Format;
using MmapQueues.Metrics;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    private QueueMetrics? _metrics;

    // Frame bytes of segments rolled since open (written under _rollLock by Roll, read under it by
    // EnqueuedSinceOpen), and the append position at open; together they give bytes enqueued since open
    // without touching the append path.
    private long _rolledFrameBytes;
    private long _openRecords, _openFrameBytes;

    private void StartMetrics(IMeterFactory? meterFactory)
    {
        Segment active = Volatile.Read(ref _active);
        (long records, int end) = active.ReservedTail;
        _openRecords = active.BaseSequence + records;
        _openFrameBytes = end - SegmentLayout.FirstRecordOffset;
        _metrics = new QueueMetrics(this, meterFactory);
    }

    /// <summary>Records and frame bytes appended since open (a consistent pair: taken under the roll lock).</summary>
    internal (long Records, long Bytes) EnqueuedSinceOpen()
    {
        lock (_rollLock)
        {
            Segment active = Volatile.Read(ref _active);
            (long records, int end) = active.ReservedTail;
            long bytes = _rolledFrameBytes + end - SegmentLayout.FirstRecordOffset - _openFrameBytes;
            return (active.BaseSequence + records - _openRecords, bytes);
        }
    }

    /// <summary>Called by Roll under _rollLock with the sealed segment's end offset.</summary>
    private void CountRolled(int sealedEnd) => _rolledFrameBytes += sealedEnd - SegmentLayout.FirstRecordOffset;

    internal long SegmentSizeBytes => _segmentSize;

    /// <summary>For retention and the full-queue policy: counts <paramref name="records"/> dropped (metric) and logs it (event 1031).</summary>
    internal void ReportDropped(long records, long firstSequence, string reason)
    {
        if (records <= 0) return;
        _metrics?.RecordDropped(records, reason);
        Log.RecordsDropped(_logger, _directory, records, firstSequence, reason);
    }

    /// <summary>For shipping: counts bytes sent to a replica (metric <c>mmapq.exported.bytes</c>).</summary>
    internal void ReportExported(long bytes, string? peer = null) => _metrics?.RecordExported(bytes, peer);

    /// <summary>For named consumers: the source of (name, next sequence) pairs behind <c>mmapq.consumer.lag</c>.</summary>
    internal void ReportConsumerPositions(Func<IEnumerable<(string Consumer, long NextSequence)>>? source) =>
        _metrics?.SetConsumerSource(source);

    internal QueueMetrics? MetricsForTests => _metrics;

    /// <summary>For <c>mmapq.claim.oldest_age</c>: the age of the oldest claim whose callback still runs, or null.</summary>
    internal TimeSpan? OldestOpenClaimAge => _openClaims.OldestAge();
}
