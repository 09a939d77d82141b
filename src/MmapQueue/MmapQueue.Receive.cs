using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    // ---- hooks for the receiver (Shipping/Receiver.cs); a replica has no other writer ----------------

    /// <summary>The segment the replica appends in.</summary>
    internal Segment ActiveSegment => Volatile.Read(ref _active);

    /// <summary>
    /// Publishes a record the receiver copied into the active segment at <paramref name="offset"/> and
    /// whose CRC it checked: reserves exactly that frame (it must be the next one), then release-stores the
    /// commit word last, as Enqueue does; readers' ReadWord pairs with it.
    /// </summary>
    internal void PublishReplicated(Segment segment, int offset, int frameLength, uint word, long sequence)
    {
        if (!segment.TryReserve(frameLength, out int at, out long seq) || at != offset || seq != sequence)
            throw new InvalidOperationException($"Replica {_directory}: expected to append sequence {sequence} at offset {offset} of {segment}, " +
                                                $"but the writer's tail is at sequence {seq}, offset {at}; a replica must have no other writer.");
        segment.PublishWord(offset, word); // commit: pairs with ReadWord in readers and the flusher
        AfterPublish(sequence);
    }

    /// <summary>Rolls the replica as the source rolled: seal, list the next segment, write the same end marker.</summary>
    internal void RollReplicated(Segment full) => Roll(full, tryOnly: false, CancellationToken.None);
}
