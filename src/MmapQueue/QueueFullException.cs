namespace MmapQueues;

/// <summary>
/// The queue reached <see cref="MmapQueueOptions.MaxQueueSizeBytes"/> and its
/// <see cref="MmapQueueOptions.FullPolicy"/> refused the record (Reject) or gave up waiting (Block).
/// Nothing was appended.
/// </summary>
public sealed class QueueFullException : IOException
{
    /// <summary>Creates the exception.</summary>
    public QueueFullException(string message, long maxQueueSizeBytes, QueueFullPolicy policy) : base(message)
    {
        MaxQueueSizeBytes = maxQueueSizeBytes;
        Policy = policy;
    }

    /// <summary>The limit that was reached.</summary>
    public long MaxQueueSizeBytes { get; }

    /// <summary>The policy in force.</summary>
    public QueueFullPolicy Policy { get; }
}
