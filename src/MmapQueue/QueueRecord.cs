namespace MmapQueues;

/// <summary>
/// A copy of one record with its sequence, as <see cref="QueueReaderChannelExtensions.AsChannelReader"/>
/// hands it out. The payload is a fresh array the receiver owns: it stays valid after the reader moves on
/// and after retention deletes the record's segment.
/// </summary>
public readonly struct QueueRecord
{
    /// <summary>Creates a record.</summary>
    /// <param name="sequence">The record's sequence number.</param>
    /// <param name="payload">The record's bytes.</param>
    public QueueRecord(long sequence, ReadOnlyMemory<byte> payload)
    {
        Sequence = sequence;
        Payload = payload;
    }

    /// <summary>The record's sequence. A named consumer that processed it commits <c>Sequence + 1</c>
    /// (<see cref="QueueReader.CommitAt"/>).</summary>
    public long Sequence { get; }

    /// <summary>The record's bytes (a copy).</summary>
    public ReadOnlyMemory<byte> Payload { get; }
}
