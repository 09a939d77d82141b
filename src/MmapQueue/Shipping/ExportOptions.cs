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
}
