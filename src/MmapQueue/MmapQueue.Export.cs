namespace MmapQueues;

public sealed partial class MmapQueue
{
    // ---- hooks for the exporter (Shipping/QueueExporter.cs, Shipping/Exporter.cs) ---------------------

    /// <summary>
    /// The queue's identity, drawn when the directory was created and kept in <c>queue.meta</c>: it tells this
    /// queue's records apart from another queue's wherever they travel (a forwarder's message ids, for example).
    /// </summary>
    public Guid QueueId => _queueId;
    internal long SegmentSize => _segmentSize;
    internal void ThrowIfDisposedForShipping() => ThrowIfDisposed(); // a read-only queue ships too: durable records only (Shipping/Exporter.ReadOnly.cs)
}
