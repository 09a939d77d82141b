using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class QueueReader
{
    /// <summary>The named consumer this reader belongs to, or null for an anonymous reader.</summary>
    public string? ConsumerName => _name;

    /// <summary>
    /// Moves the reader so that the next <see cref="TryRead"/> returns <paramref name="sequence"/>: a binary
    /// search over segments by base sequence, the segment's sparse index, then a scan of at most one index
    /// step. The view from the last <see cref="TryRead"/> is invalid afterwards. A named consumer's
    /// committed position changes only with its next <see cref="Commit"/>.
    /// </summary>
    /// <param name="sequence">From <see cref="MmapQueue.FirstSequence"/> to <see cref="MmapQueue.NextSequence"/> (inclusive: a reader may wait at the end).</param>
    /// <param name="outOfRange">Throw for a sequence the queue does not hold, or clamp to the nearest held one.</param>
    /// <returns>The sequence the next <see cref="TryRead"/> returns (differs from <paramref name="sequence"/> only when clamped).</returns>
    /// <exception cref="SequenceOutOfRangeException">The sequence was deleted by retention or is not written yet.</exception>
    public long Seek(long sequence, OutOfRange outOfRange = OutOfRange.Throw)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        (Segment seg, int offset, long at, long target) = _queue.Locate(sequence, outOfRange, ref _lease);
        _segment?.Release();
        _segment = seg;
        _offset = offset;
        _sequence = at;
        _target = target;
        return target;
    }

    /// <summary>
    /// Makes this named consumer's position durable: after a crash or reopen it resumes at
    /// <see cref="NextSequence"/> (every record returned so far counts as consumed). Costs one small write
    /// and an fdatasync of the cursors file; then retention deletes segments every named consumer has
    /// committed past.
    /// </summary>
    /// <exception cref="InvalidOperationException">This reader is anonymous (opened by sequence).</exception>
    /// <exception cref="IOException">The cursors file could not be written; the previous commit stays in force.</exception>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_name is null)
            throw new InvalidOperationException("Only a named consumer can commit: open it with OpenReader(name). " +
                                                $"This reader was opened by sequence and is at {NextSequence}.");
        _queue.CommitConsumer(_name, NextSequence);
    }

    /// <summary>
    /// The next segment is not listed. Normally the writer sealed this one and has not listed the next yet
    /// (false: caught up for now). But when a limit (DropOldest, RetentionAge) deleted segments past this
    /// one while this reader still held it, move to the first retained sequence and log the gap: never silent.
    /// </summary>
    private bool SkipDroppedRecords()
    {
        long first = _queue.FirstSequence;
        if (_sequence >= first) return false;
        Log.ReaderSkippedDropped(_queue.Logger, _queue.Path, _name ?? "(anonymous)", _sequence, first);
        Seek(first, OutOfRange.Clamp);
        return true;
    }

    /// <summary>
    /// A read-only queue's reader whose segment left its name (the writer deleted or recycled it under a lease
    /// registered too late for that retention pass): its bytes may be zeroed or rewritten, so nothing more is read
    /// from it. Moves to the first sequence still stored and logs the gap (event 1032); true when it moved.
    /// <paramref name="force"/> (a bad frame, about to be reported as corruption) checks the file now, not at most every 10 ms.
    /// </summary>
    private bool SkipVanished(Segment seg, bool force = false)
    {
        if (!seg.HasVanished(force)) return false;
        long first = _queue.FirstSequence;
        if (first > _sequence) Log.ReaderSkippedDropped(_queue.Logger, _queue.Path, _name ?? "(anonymous)", _sequence, first);
        Seek(Math.Max(first, _sequence), OutOfRange.Clamp); // at its end already (nothing lost): just on to the next segment
        return true;
    }

    /// <summary>The file and offset of the record the last <see cref="TryRead"/> returned (<paramref name="payloadLength"/> bytes), for tools that print where records are.</summary>
    internal (string File, int Offset) LastRecordPosition(int payloadLength) =>
        (_segment?.Path ?? "", _offset - Format.SegmentLayout.FrameLength(payloadLength));

    private bool NextSegmentListed() =>
        _queue.SegmentStartingAt(_sequence) is not null || _sequence < _queue.FirstSequence;
}
