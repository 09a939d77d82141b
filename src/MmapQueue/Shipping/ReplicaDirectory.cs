using MmapQueues.Storage;

namespace MmapQueues.Shipping;

/// <summary>Opens the replica queue for a session, creating it from the HELLO the first time.</summary>
internal static class ReplicaDirectory
{
    /// <summary>
    /// Opens the replica. A new one first gets queue.meta with the source's id and segment size, and, when
    /// the source ships from a later segment, its first segment file at that base sequence, so that the
    /// queue then opens exactly as a copy of the source would. A replica with a size cap refuses a full
    /// disk (code <c>limit</c>) rather than block the session on itself.
    /// </summary>
    public static MmapQueue Open(string dir, WireProtocol.Hello h, ReceiverOptions options)
    {
        UnixFileMode fileMode = (options.QueueOptions ?? new MmapQueueOptions()).FilePermissions;
        QueueFiles.CreateDirectory(dir, fileMode);
        string metaPath = Path.Combine(dir, SegmentNames.MetaName);
        if (QueueDirectory.TryReadMeta(metaPath) is not { } m)
        {
            if (QueueDirectory.ListSegments(dir).Count > 0)
                throw new ShippingProtocolException($"Replica directory {dir} holds segment files but no {SegmentNames.MetaName}; refusing to adopt queue {h.QueueId} over them.", ShippingErrorCode.Source);
            QueueDirectory.OpenOrCreateMeta(dir, h.SegmentSize, h.QueueId, fileMode);
            if (h.StartBase > 0)
            {
                Segment first = SegmentFiles.CreateSpare(dir, h.SegmentSize, fileMode);
                SegmentFiles.Activate(first, dir, h.StartBase, h.QueueId);
                first.Release();
                Native.Libc.FsyncDirectory(dir);
            }
        }
        else
        {
            if (m.QueueId != h.QueueId || m.SegmentSize != h.SegmentSize)
                throw new ShippingProtocolException($"Replica {dir} is a copy of queue {m.QueueId} with {m.SegmentSize}-byte segments; " +
                                                    $"the sender ships queue {h.QueueId} with {h.SegmentSize}-byte segments.", ShippingErrorCode.Source);
        }
        MmapQueueOptions o = (options.QueueOptions ?? new MmapQueueOptions()).Clone();
        o.SegmentSizeBytes = h.SegmentSize;
        if (o.MaxQueueSizeBytes > 0 && o.FullPolicy == QueueFullPolicy.Block) o.FullPolicy = QueueFullPolicy.Reject;
        try
        {
            return new MmapQueue(dir, o, options.LoggerFactory);
        }
        catch (ArgumentException e) when (o.MaxQueueSizeBytes > 0)
        {
            throw new ShippingProtocolException($"Replica {dir} cannot open with {h.SegmentSize}-byte segments under its size cap: {e.Message}", ShippingErrorCode.Limit, e);
        }
    }
}
