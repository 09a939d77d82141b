namespace MmapQueues;

/// <summary>How <see cref="MmapQueue.ExportToAsync(System.Net.Sockets.Socket, long, ExportOptions?, CancellationToken)"/> runs.</summary>
public sealed class ExportOptions
{
    /// <summary>
    /// Keep following the tail after everything visible was sent: new records are shipped as producers
    /// publish them, until the token is cancelled or the queue is disposed. Default false (ship what is
    /// visible when the call starts, wait for the replica to make it durable, return).
    /// </summary>
    public bool Follow { get; set; }

    /// <summary>Receives progress after every chunk and every acknowledgement; null for none.</summary>
    public IProgress<ShippingProgress>? Progress { get; set; }

    /// <summary>
    /// Ship as this named consumer (retention by shipping): the session registers it if it is new (at
    /// <see cref="MmapQueue.FirstSequence"/>, as <see cref="MmapQueue.OpenReader(string)"/> does) and commits
    /// it to the replica's durable position at every acknowledgement, so retention deletes a segment once
    /// the replica holds it durably and every other consumer is past it. No reader of the same name may be
    /// open during the session. Null (the default): shipping does not hold back or free any segment.
    /// </summary>
    public string? ConsumerName { get; set; }
}
