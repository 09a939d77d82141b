namespace MmapQueues.Shipping;

/// <summary>Where a shipping session stands, reported after each chunk and acknowledgement.</summary>
/// <param name="SentSequence">Every record before this sequence was sent (sender) or received and verified (receiver).</param>
/// <param name="DurableSequence">Every record before this sequence is durable on the replica (its last acknowledgement).</param>
/// <param name="Bytes">Segment bytes shipped in this session.</param>
public readonly record struct ShippingProgress(long SentSequence, long DurableSequence, long Bytes);
