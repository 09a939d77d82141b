namespace MmapQueues;

/// <summary>What <see cref="MmapQueue.Enqueue(ReadOnlySpan{byte})"/> does when a new segment would take the
/// queue past <see cref="MmapQueueOptions.MaxQueueSizeBytes"/> and retention cannot free one.</summary>
public enum QueueFullPolicy
{
    /// <summary>Wait for named consumers to commit (so retention frees a segment), up to
    /// <see cref="MmapQueueOptions.FullBlockTimeout"/> or until the caller's token is cancelled; then throw
    /// <see cref="QueueFullException"/> (timeout) or <see cref="OperationCanceledException"/>.</summary>
    Block,

    /// <summary>Refuse at once: <see cref="MmapQueue.TryEnqueue"/> returns false, <c>Enqueue</c> throws
    /// <see cref="QueueFullException"/>. Nothing is appended.</summary>
    Reject,

    /// <summary>Delete the oldest segment even if consumers have not read it. Counted in
    /// <see cref="MmapQueue.DroppedRecords"/> and logged as a warning.</summary>
    DropOldest,
}

/// <summary>What a seek or <see cref="MmapQueue.OpenReader(long, OutOfRange)"/> does with a sequence the
/// queue does not hold.</summary>
public enum OutOfRange
{
    /// <summary>Throw <see cref="SequenceOutOfRangeException"/>.</summary>
    Throw,

    /// <summary>Start at the nearest held sequence instead: <see cref="MmapQueue.FirstSequence"/> for one
    /// retention already deleted, <see cref="MmapQueue.NextSequence"/> for one not written yet.</summary>
    Clamp,
}
