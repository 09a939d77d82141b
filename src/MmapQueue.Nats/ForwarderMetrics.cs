using System.Diagnostics.Metrics;

namespace MmapQueues.Nats;

/// <summary>
/// Instruments of one forwarder on the meter <c>MmapQueue.Nats</c> (listed in docs/METRICS.md). Counters are
/// plain fields read at collection time: the publish loop only adds to longs (Interlocked or Volatile.Write), each
/// paired with the Volatile.Read in its instrument's callback on the collecting thread.
/// </summary>
internal sealed class ForwarderMetrics : IDisposable
{
    public const string MeterName = "MmapQueue.Nats";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    public long Records;     // records acknowledged (stored or duplicate)
    public long Bytes;       // their payload bytes
    public long Duplicates;  // messages the server reported as duplicates
    public long Retries;     // retry rounds
    public long InFlight;    // messages sent, ack pending
    public long Acknowledged; // next sequence not yet known to be in the stream

    public ForwarderMetrics(MmapQueue queue, NatsForwarderOptions options, IMeterFactory? factory)
    {
        _ownsMeter = factory is null;
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        KeyValuePair<string, object?>[] tags =
        [
            new("messaging.system", "nats"),
            new("messaging.destination.name", options.Subject),
            new("mmapq.queue", queue.Path),
            new("messaging.consumer.group.name", options.ConsumerName),
        ];
        _meter.CreateObservableCounter("mmapq.nats.forwarded.records", () => new Measurement<long>(Volatile.Read(ref Records), tags), "{record}", "records acknowledged by the stream (stored or reported duplicate)");
        _meter.CreateObservableCounter("mmapq.nats.forwarded.bytes", () => new Measurement<long>(Volatile.Read(ref Bytes), tags), "By", "payload bytes of the acknowledged records");
        _meter.CreateObservableCounter("mmapq.nats.duplicates", () => new Measurement<long>(Volatile.Read(ref Duplicates), tags), "{message}", "messages the server reported as already stored");
        _meter.CreateObservableCounter("mmapq.nats.retries", () => new Measurement<long>(Volatile.Read(ref Retries), tags), "{retry}", "retry rounds after a transient failure");
        _meter.CreateObservableGauge("mmapq.nats.inflight", () => new Measurement<long>(Volatile.Read(ref InFlight), tags), "{message}", "messages published whose ack has not arrived");
        _meter.CreateObservableGauge("mmapq.nats.lag", () => new Measurement<long>(_disposed ? 0 : Math.Max(0, queue.NextSequence - Volatile.Read(ref Acknowledged)), tags), "{record}", "records in the queue not yet acknowledged by the stream");
    }

    private volatile bool _disposed; // a container's meter outlives the forwarder (and maybe the queue)

    public void Dispose()
    {
        _disposed = true;
        if (_ownsMeter) _meter.Dispose();
    }
}
