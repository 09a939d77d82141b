namespace MmapQueues;

public sealed partial class MmapQueue
{
    // ---- hooks for the exporter (Shipping/QueueExporter.cs, Shipping/Exporter.cs) ---------------------

    internal Guid QueueId => _queueId;
    internal long SegmentSize => _segmentSize;
    internal void ThrowIfDisposedForShipping() => ThrowIfDisposed();
}
