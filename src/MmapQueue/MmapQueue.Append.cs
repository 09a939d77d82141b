using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    private readonly object _rollLock = new();

    /// <summary>
    /// Appends one record and returns its sequence. On return the record is visible to readers; it is
    /// durable on return only in <see cref="FlushMode.Sync"/> (otherwise after the next <see cref="Flush"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The payload is larger than <see cref="MaxPayloadBytes"/>.</exception>
    /// <exception cref="IOException">A new segment was needed and could not be created (for example, the disk is full).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Enqueue(ReadOnlySpan<byte> payload)
    {
        if (_disposed) ThrowDisposed();
        if (payload.Length > _maxPayload) ThrowTooLarge(payload.Length);
        int length = payload.Length;
        (Segment seg, int offset, long sequence) = Reserve(SegmentLayout.FrameLength(length));
        Span<byte> bytes = seg.Bytes;
        payload.CopyTo(bytes.Slice(offset + SegmentLayout.RecordHeaderSize, length));
        uint word = SegmentLayout.RecordWord(length);
        Frames.WriteCrc(bytes, offset, sequence, word, length);
        seg.PublishWord(offset, word); // commit: the release store readers' ReadWord pairs with
        AfterPublish(sequence);
        return sequence;
    }

    /// <summary>
    /// Appends one record of <paramref name="length"/> bytes that <paramref name="write"/> serializes straight
    /// into the mapped segment (no intermediate buffer). The span passed to <paramref name="write"/> is valid
    /// only during the call. If <paramref name="write"/> throws, the record is published as aborted (its
    /// sequence is used, readers skip it) and the exception propagates: a reservation is never left open.
    /// </summary>
    public long Enqueue<TState>(int length, TState state, SpanAction<byte, TState> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (_disposed) ThrowDisposed();
        if ((uint)length > (uint)_maxPayload) ThrowTooLarge(length);
        (Segment seg, int offset, long sequence) = Reserve(SegmentLayout.FrameLength(length));
        Span<byte> bytes = seg.Bytes;
        uint word = SegmentLayout.RecordWord(length);
        try
        {
            write(bytes.Slice(offset + SegmentLayout.RecordHeaderSize, length), state);
        }
        catch
        {
            word = SegmentLayout.AbortedWord(length);
            Frames.WriteCrc(bytes, offset, sequence, word, length);
            seg.PublishWord(offset, word);
            AfterPublish(sequence);
            throw;
        }
        Frames.WriteCrc(bytes, offset, sequence, word, length);
        seg.PublishWord(offset, word); // commit: pairs with ReadWord in readers
        AfterPublish(sequence);
        return sequence;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private (Segment Segment, int Offset, long Sequence) Reserve(int frameLength)
    {
        while (true)
        {
            Segment seg = Volatile.Read(ref _active);
            if (seg.TryReserve(frameLength, out int offset, out long sequence)) return (seg, offset, sequence);
            Roll(seg);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AfterPublish(long sequence)
    {
        if (Volatile.Read(ref _readersWaiting) != 0) WakeReaders();
        if (_options.FlushMode == FlushMode.Sync) WaitDurable(sequence);
    }

    /// <summary>
    /// Replaces a full active segment: seal it (no reservation succeeds after that), take the preheated spare
    /// and name it for the next sequence, list it, then write the old segment's end marker and switch
    /// producers over. The end marker is written only once the next segment is listed, so a reader or the
    /// flusher that sees it always finds the next segment. If the spare cannot be made (disk full), the old
    /// segment stays sealed without a marker and the next append tries again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Roll(Segment full)
    {
        lock (_rollLock)
        {
            if (_disposed) ThrowDisposed();
            if (Volatile.Read(ref _active) != full) return; // another producer rolled already
            (long records, int end) = full.Seal();
            long nextBase = full.BaseSequence + records;
            Segment next = _allocator.TakeAndActivate(nextBase, _queueId);
            Volatile.Write(ref _directoryDirty, 1); // the rename must be fsynced before this segment's records are durable
            AddSegment(next);
            Recovery.WriteEndMarker(full, end, nextBase);
            CountRolled(end); // here, not after Seal: a failed TakeAndActivate retries the roll and would count twice
            Volatile.Write(ref _active, next);
            full.Release(); // the writer's reference; the flusher and readers take their own
            Log.SegmentRolled(_logger, next.Path, nextBase);
        }
    }

    [DoesNotReturn]
    private void ThrowTooLarge(int length) =>
        throw new ArgumentException($"A record of {length} bytes does not fit in a segment of {_segmentSize} bytes " +
                                    $"(at most {_maxPayload} bytes of payload per record); raise SegmentSizeBytes or split the record.", "payload");

    [DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed.");
}
