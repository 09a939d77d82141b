using System.Diagnostics.Metrics;

namespace MmapQueues.Metrics;

/// <summary>
/// The instruments of one queue on the <c>MmapQueue</c> meter (names and meaning in docs/METRICS.md).
/// </summary>
/// <remarks>
/// Nothing here runs on the append path. Records and bytes enqueued, durable lag, segments, disk bytes and
/// consumer lag are observable instruments: a collection computes them from positions the queue keeps anyway
/// (sequences, reservation tails, the segment list), so they cost nothing between collections and a lag can
/// never go negative. Only rare events (a flush, a drop, an export) record a measurement as they happen.
/// </remarks>
internal sealed class QueueMetrics : IDisposable
{
    public const string MeterName = "MmapQueue";

    private readonly MmapQueue _queue;
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly Histogram<double> _flushDuration;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _exported;
    private volatile Func<IEnumerable<(string Consumer, long NextSequence)>>? _consumers;
    private volatile bool _disposed;

    public QueueMetrics(MmapQueue queue, IMeterFactory? meterFactory)
    {
        _queue = queue;
        string? version = typeof(QueueMetrics).Assembly.GetName().Version?.ToString();
        _tags =
        [
            new("messaging.system", "mmapqueue"),
            new("messaging.destination.name", queue.Path),
        ];
        // One meter per queue, tagged with it: an IMeterFactory caches meters by name, version and tags, so
        // two queues in one container never share (and double-register) instruments.
        var meterOptions = new MeterOptions(MeterName) { Version = version, Tags = [_tags[1]] };
        if (meterFactory is null)
        {
            _meter = new Meter(meterOptions);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(meterOptions); // the factory owns and disposes it
        }

        _meter.CreateObservableCounter("messaging.client.sent.messages", ObserveEnqueuedRecords, "{message}",
            "Records enqueued since the queue was opened (aborted claims included: they use a sequence).");
        _meter.CreateObservableCounter("mmapq.enqueued.bytes", ObserveEnqueuedBytes, "By",
            "Bytes appended to segments since the queue was opened: payload plus the 8-byte frame header and padding to 8 bytes.");
        _flushDuration = _meter.CreateHistogram("mmapq.flush.duration", "s",
            "Time a flush took: msync of the dirty ranges, header watermarks and directory fsync.", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _meter.CreateObservableGauge("mmapq.durable.lag", ObserveDurableLag, "{record}",
            "Records appended but not yet durable: NextSequence - DurableSequence.");
        _meter.CreateObservableUpDownCounter("mmapq.segments", ObserveSegments, "{segment}",
            "Segment files the queue holds (the preallocated spare not included).");
        _meter.CreateObservableUpDownCounter("mmapq.disk.bytes", ObserveDiskBytes, "By",
            "Disk space of the segment files (each is preallocated to its full size; the spare not included).");
        _meter.CreateObservableGauge("mmapq.consumer.lag", ObserveConsumerLag, "{record}",
            "Records a named consumer has still to read: NextSequence - the consumer's position.");
        _meter.CreateObservableGauge("mmapq.claim.oldest_age", ObserveOldestClaim, "s",
            "How long the oldest Enqueue callback (claim API) still running has held its claim; 0 when none runs.");
        _dropped = _meter.CreateCounter<long>("mmapq.dropped.records", "{record}",
            "Records removed before every consumer read them (retention limits, drop-oldest on a full queue), by reason.");
        _exported = _meter.CreateCounter<long>("mmapq.exported.bytes", "By",
            "Segment bytes shipped to a replica.");
    }

    /// <summary>The meter (tests and the DI package check its name and factory).</summary>
    public Meter Meter => _meter;

    public void RecordFlush(TimeSpan elapsed)
    {
        if (_flushDuration.Enabled) _flushDuration.Record(elapsed.TotalSeconds, _tags);
    }

    public void RecordDropped(long records, string reason)
    {
        if (records <= 0 || !_dropped.Enabled) return;
        _dropped.Add(records, _tags[0], _tags[1], new("mmapq.drop.reason", reason));
    }

    public void RecordExported(long bytes, string? peer)
    {
        if (bytes <= 0 || !_exported.Enabled) return;
        if (peer is null) _exported.Add(bytes, _tags);
        else _exported.Add(bytes, _tags[0], _tags[1], new("server.address", peer));
    }

    public void SetConsumerSource(Func<IEnumerable<(string Consumer, long NextSequence)>>? source) => _consumers = source;

    private IEnumerable<Measurement<long>> ObserveEnqueuedRecords() =>
        Observe(() => _queue.EnqueuedSinceOpen().Records, extra: new("messaging.operation.name", "enqueue"));

    private IEnumerable<Measurement<long>> ObserveEnqueuedBytes() => Observe(() => _queue.EnqueuedSinceOpen().Bytes);

    private IEnumerable<Measurement<long>> ObserveDurableLag() => Observe(() =>
    {
        long durable = _queue.DurableSequence; // read first: NextSequence only grows, so next - durable >= 0
        return Math.Max(0, _queue.NextSequence - durable);
    });

    private IEnumerable<Measurement<long>> ObserveSegments() => Observe(() => _queue.Segments.Length);

    private IEnumerable<Measurement<long>> ObserveDiskBytes() => Observe(() => _queue.Segments.Length * _queue.SegmentSizeBytes);

    private IEnumerable<Measurement<double>> ObserveOldestClaim()
    {
        if (_disposed || _queue.IsDisposed) return [];
        return [new Measurement<double>((_queue.OldestOpenClaimAge ?? TimeSpan.Zero).TotalSeconds, _tags)];
    }

    private IEnumerable<Measurement<long>> ObserveConsumerLag()
    {
        var source = _consumers;
        if (source is null || _disposed || _queue.IsDisposed) return [];
        var list = new List<Measurement<long>>();
        foreach (var (consumer, position) in source())
        {
            long next = _queue.NextSequence; // read after the position: the lag is never negative
            list.Add(new(Math.Max(0, next - position), _tags[0], _tags[1], new("messaging.consumer.group.name", consumer)));
        }
        return list;
    }

    private IEnumerable<Measurement<long>> Observe(Func<long> value, KeyValuePair<string, object?>? extra = null)
    {
        if (_disposed || _queue.IsDisposed) return [];
        long v = value();
        return [extra is { } e ? new Measurement<long>(v, _tags[0], _tags[1], e) : new Measurement<long>(v, _tags)];
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsMeter) _meter.Dispose();
    }
}
