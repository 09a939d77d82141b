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
    internal void ThrowIfDisposedForShipping()
    {
        ThrowIfDisposed();
        if (_readOnly) // the exporter ships durable records and maps segments the writer's way: not yet from a reader process
            throw new InvalidOperationException($"Queue {_directory} is open read-only (MmapQueueOptions.ReadOnly): exporting from a reader process " +
                                                "is not supported yet; export from the writer's process, or open the queue for writing when no writer runs.");
    }
}
