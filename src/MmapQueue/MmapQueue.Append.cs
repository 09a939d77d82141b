using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    /// <summary>
    /// Appends one record and returns its sequence. On return the record is visible to readers; it is
    /// durable on return only in <see cref="FlushMode.Sync"/> (otherwise after the next <see cref="Flush"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The payload is larger than <see cref="MaxPayloadBytes"/>.</exception>
    /// <exception cref="QueueFullException">The queue is at <see cref="MmapQueueOptions.MaxQueueSizeBytes"/> and the
    /// <see cref="MmapQueueOptions.FullPolicy"/> is Reject, or Block waited <see cref="MmapQueueOptions.FullBlockTimeout"/>.</exception>
    /// <exception cref="IOException">A new segment was needed and could not be created (for example, the disk is full).</exception>
    /// <exception cref="TimeoutException">Sync mode: the record was appended, but an older claim (a callback of
    /// <see cref="Enqueue{TState}"/>) stayed open longer than <see cref="MmapQueueOptions.ClaimTimeout"/>, so it is not durable yet.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Enqueue(ReadOnlySpan<byte> payload)
    {
        Append(payload, tryOnly: false, CancellationToken.None, out long sequence);
        return sequence;
    }

    /// <summary>
    /// <see cref="Enqueue(ReadOnlySpan{byte})"/> whose wait for space under <see cref="QueueFullPolicy.Block"/>
    /// ends early when <paramref name="cancellationToken"/> is cancelled (nothing is appended then).
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled while waiting for space.</exception>
    public long Enqueue(ReadOnlySpan<byte> payload, CancellationToken cancellationToken)
    {
        Append(payload, tryOnly: false, cancellationToken, out long sequence);
        return sequence;
    }

    /// <summary>
    /// Appends one record unless the queue is full: returns false, appending nothing, when the queue is at
    /// <see cref="MmapQueueOptions.MaxQueueSizeBytes"/> and retention cannot free a segment (under
    /// <see cref="QueueFullPolicy.Block"/> and <see cref="QueueFullPolicy.Reject"/> alike: it never waits).
    /// Under <see cref="QueueFullPolicy.DropOldest"/> it drops the oldest segment and succeeds.
    /// </summary>
    /// <exception cref="ArgumentException">The payload is larger than <see cref="MaxPayloadBytes"/>.</exception>
    public bool TryEnqueue(ReadOnlySpan<byte> payload, out long sequence) =>
        Append(payload, tryOnly: true, CancellationToken.None, out sequence);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Append(ReadOnlySpan<byte> payload, bool tryOnly, CancellationToken cancellationToken, out long sequence)
    {
        if (_disposed) ThrowDisposed();
        if (payload.Length > _maxPayload) ThrowTooLarge(payload.Length);
        int length = payload.Length;
        if (!Reserve(SegmentLayout.FrameLength(length), tryOnly, cancellationToken, out Segment seg, out int offset, out sequence))
            return false;
        seg.StoreClaim(offset, sequence, length); // right after the reservation: recovery can step over this frame from now on
        Span<byte> bytes = seg.Bytes;
        payload.CopyTo(bytes.Slice(offset + SegmentLayout.RecordHeaderSize, length));
        uint word = SegmentLayout.RecordWord(length);
        uint crc = SegmentLayout.RecordCrc(sequence, word, bytes.Slice(offset + SegmentLayout.RecordHeaderSize, length));
        seg.PublishHeader(offset, word, crc); // commit: the release store readers' ReadWord pairs with
        AfterPublish(sequence);
        return true;
    }

    /// <summary>
    /// Appends one record of <paramref name="length"/> bytes that <paramref name="write"/> serializes straight
    /// into the mapped segment (no intermediate buffer). The span passed to <paramref name="write"/> is valid
    /// only during the call. If <paramref name="write"/> throws, the record is published as aborted (its
    /// sequence is used, readers skip it) and the exception propagates: a reservation is never left open.
    /// </summary>
    /// <remarks>
    /// While <paramref name="write"/> runs, the frame holds a claim: readers wait at it, and <see cref="Flush"/>
    /// (and sync-mode acknowledgements) of later records wait for it at most <see cref="MmapQueueOptions.ClaimTimeout"/>.
    /// If the process dies meanwhile, the next open turns the claim into an aborted record and keeps every later
    /// record. Keep the callback short and non-blocking: serialize, do not wait on I/O or locks.
    /// </remarks>
    /// <exception cref="TimeoutException">Sync mode: the record was appended, but an older claim stayed open longer than
    /// <see cref="MmapQueueOptions.ClaimTimeout"/>, so it could not be made durable yet.</exception>
    public long Enqueue<TState>(int length, TState state, SpanAction<byte, TState> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (_disposed) ThrowDisposed();
        if ((uint)length > (uint)_maxPayload) ThrowTooLarge(length);
        Reserve(SegmentLayout.FrameLength(length), tryOnly: false, CancellationToken.None, out Segment seg, out int offset, out long sequence);
        seg.StoreClaim(offset, sequence, length); // right after the reservation: recovery can step over this frame from now on
        int slot = _openClaims.Enter(sequence); // the callback may take long: Flush, Dispose and the gauge see its age
        Span<byte> bytes = seg.Bytes;
        Span<byte> payload = bytes.Slice(offset + SegmentLayout.RecordHeaderSize, length);
        uint word = SegmentLayout.RecordWord(length);
        try
        {
            write(payload, state);
        }
        catch
        {
            word = SegmentLayout.AbortedWord(length);
            seg.PublishHeader(offset, word, SegmentLayout.RecordCrc(sequence, word, payload));
            _openClaims.Exit(slot);
            AfterPublish(sequence);
            throw;
        }
        seg.PublishHeader(offset, word, SegmentLayout.RecordCrc(sequence, word, payload)); // commit: pairs with ReadWord in readers
        _openClaims.Exit(slot);
        AfterPublish(sequence);
        return sequence;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Reserve(int frameLength, bool tryOnly, CancellationToken cancellationToken, out Segment segment, out int offset, out long sequence)
    {
        while (true)
        {
            segment = Volatile.Read(ref _active);
            if (segment.TryReserve(frameLength, out offset, out sequence)) return true;
            if (!Roll(segment, tryOnly, cancellationToken)) return false;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AfterPublish(long sequence)
    {
        if (Volatile.Read(ref _readersWaiting) != 0) WakeReaders();
        _sharedWakeup?.AfterPublish(); // other processes' readers: one load of their waiter count, no system call when 0
        if (_options.FlushMode == FlushMode.Sync) _flusher.WaitDurable(sequence);
    }

    /// <summary>
    /// The cold path when the active segment is full: check capacity (the only place it is checked, once
    /// per segment, so the per-record path stays lean), then roll. Returns false only for a
    /// <paramref name="tryOnly"/> append that found the queue full.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Roll(Segment full, bool tryOnly, CancellationToken cancellationToken)
    {
        if (_readOnly) throw ReadOnlyError("Enqueue"); // a read-only queue's placeholder is sealed: every append comes here
        long giveUpAt = 0; // Stopwatch timestamp at which Block stops waiting; 0 until the first wait
        while (true)
        {
            Task spaceFreed;
            lock (_rollLock)
            {
                if (_disposed) ThrowDisposed();
                if (Volatile.Read(ref _active) != full) return true; // another producer rolled already
                if (_retention.HasRoomForNextSegment(out spaceFreed))
                {
                    RollUnderRollLock(full);
                    return true;
                }
                QueueFullPolicy policy = _options.FullPolicy;
                if (policy == QueueFullPolicy.DropOldest)
                {
                    _retention.DropOldestForSpace();
                    continue;
                }
                if (tryOnly) return false;
                if (policy == QueueFullPolicy.Reject) throw _retention.FullException("");
            }
            _retention.WaitForSpace(spaceFreed, ref giveUpAt, cancellationToken);
        }
    }

    /// <summary>
    /// Replaces a full active segment: seal it (no reservation succeeds after that), take the preheated spare
    /// and name it for the next sequence, list it, then write the old segment's end marker and switch
    /// producers over. The end marker is written only once the next segment is listed, so a reader or the
    /// flusher that sees it always finds the next segment. If the spare cannot be made (disk full), the old
    /// segment stays sealed without a marker and the next append tries again.
    /// </summary>
    private void RollUnderRollLock(Segment full)
    {
        Debug.Assert(Monitor.IsEntered(_rollLock), "the roll needs the roll lock");
        (long records, int end) = full.Seal();
        long nextBase = full.BaseSequence + records;
        Segment next = _allocator.TakeAndActivate(nextBase, _queueId);
        _flusher.MarkDirectoryDirty(); // the rename must be fsynced before this segment's records are durable
        _segments.Add(next);
        if (_options.RecycleSegments) KeepRecentMappings(full);
        Recovery.WriteEndMarker(full, end, nextBase);
        CountRolled(end); // here, not after Seal: a failed TakeAndActivate retries the roll and would count twice
        Volatile.Write(ref _active, next); // pairs with the Volatile.Read in Reserve: producers move over
        Log.SegmentRolled(_logger, next.Path, nextBase);
        _indexes.BuildInBackground(full, records); // takes over the writer's reference: producers that reserved before the seal may still be copying
        _retention.Schedule();
    }

    /// <summary>
    /// Recycling: the segments sealed last keep their mappings when idle (<see cref="Segment.KeepMappingWhenIdle"/>),
    /// so a consumer keeping up lets retention hand them to the allocator still mapped; the one that falls out of
    /// that window (it is older: a consumer that far behind is not keeping up) unmaps when idle again.
    /// </summary>
    private void KeepRecentMappings(Segment sealedNow)
    {
        sealedNow.KeepMappingWhenIdle(true);
        Segment[] segs = _segments.Snapshot; // [..., sealed ones, sealedNow, the next active]
        int leaving = segs.Length - 2 - KeptMappings;
        if (leaving >= 0) segs[leaving].KeepMappingWhenIdle(false);
    }

    /// <summary>How many of the last sealed segments keep their mappings when idle (<see cref="KeepRecentMappings"/>).</summary>
    private const int KeptMappings = 2;

    [DoesNotReturn]
    private void ThrowTooLarge(int length) =>
        throw new ArgumentException($"A record of {length} bytes does not fit in a segment of {_segmentSize} bytes " +
                                    $"(at most {_maxPayload} bytes of payload per record); raise SegmentSizeBytes or split the record.", "payload");

    [DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed.");
}
