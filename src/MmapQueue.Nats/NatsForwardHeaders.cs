namespace MmapQueues.Nats;

/// <summary>
/// Headers on every message the forwarder publishes. With them a consumer of the stream can tell which queue
/// and which records a message carries, and the forwarder finds where it left off (see docs/DECISIONS.md).
/// </summary>
public static class NatsForwardHeaders
{
    /// <summary>The queue's <see cref="MmapQueue.QueueId"/>, 32 hex digits.</summary>
    public const string QueueId = "Mmapq-Queue-Id";

    /// <summary>The sequence of the (last) record in the message, decimal.</summary>
    public const string Sequence = "Mmapq-Sequence";

    /// <summary>
    /// The first queue sequence the message covers, decimal: the record's own sequence, or lower when the queue
    /// skipped sequences just before it (an aborted claim, a dropped record). Consecutive messages of one queue
    /// cover consecutive ranges. Absent when the message covers only its own sequence (the common case).
    /// </summary>
    public const string From = "Mmapq-From";

    /// <summary><c>batch</c> when the body is a <see cref="NatsBatch"/>; absent when the body is one record's payload.</summary>
    public const string Format = "Mmapq-Format";

    /// <summary>The JetStream de-duplication header, set to the message id: <c>{queue id}:{sequence}</c> for a record, <c>{queue id}:{from}-{last}</c> for a batch.</summary>
    public const string MsgId = "Nats-Msg-Id";
}
