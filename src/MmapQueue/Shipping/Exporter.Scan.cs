using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Shipping;

internal sealed partial class Exporter
{
    /// <summary>
    /// Finds the replica's resume position here and checks it: not past the queue's end, nor (for a named
    /// consumer) past the highest sequence ever sent to it, unless it is exactly where this session would
    /// start an empty replica; the segment exists, and walking its commit words from the first record
    /// reaches the replica's next sequence exactly at the replica's offset. Returns the segment with a
    /// reference held, and whether that walk passed the segment's end. The peer is told only the code <c>resume</c>; the positions go to the exception.
    /// </summary>
    private (Segment Segment, int Offset, long Sequence, bool SegmentDone) Locate(WireProtocol.Resume r, long startBase)
    {
        long first = _queue.FirstSequence, next = _queue.NextSequence;
        string? problem = null;
        Segment? seg = _queue.SegmentStartingAt(r.SegmentBase);
        long shipped = _marks is null ? long.MaxValue : Math.Max(_marks.Get(_consumer!), startBase);
        if (r.NextSequence > next)
            problem = $"the replica claims records up to {r.NextSequence}, but the source only has them up to {next}: they have diverged";
        else if (r.NextSequence > shipped)
            problem = $"the replica claims records up to {r.NextSequence}, but consumer '{_consumer}' was only ever sent records below {shipped}";
        else if (seg is null)
            problem = $"the replica's segment {r.SegmentBase} is not stored here (stored: [{first}, {next})); start a new replica";
        if (problem is null && !Hold(seg!, r.SegmentBase))
            problem = $"the replica's segment {r.SegmentBase} was deleted or recycled here while it was opened; start a new replica";
        if (problem is null && seg is not null)
        {
            (int end, long seq, bool done) = ScanVisible(seg, SegmentLayout.FirstRecordOffset, seg.BaseSequence, r.NextSequence, forward: true);
            if (seq == r.NextSequence && end == r.Offset) return (seg, end, seq, done); // done: the replica holds the end marker too
            seg.Release();
            problem = $"the replica's next sequence {r.NextSequence} is at offset {r.Offset} of segment {r.SegmentBase}, " +
                      $"but here sequence {seq} is at offset {end}: the replica does not match this queue";
        }
        throw Refuse(new ShippingProtocolException($"Cannot resume shipping {_queue.Path} to {_conn.Peer}: {problem}.", ShippingErrorCode.Resume));
    }

    /// <summary>
    /// Walks visible records from (off, seq): returns where they end, the next sequence there, and whether
    /// the segment is finished (an end marker was passed, or no frame fits). Stops before a record whose
    /// sequence is <paramref name="stopAt"/>. A segment that is durable as a whole is not walked: its
    /// header's durable watermark says exactly where it ends (no page faults over the segment, which
    /// keeps sendfile's CPU advantage).
    /// </summary>
    private (int End, long Sequence, bool SegmentDone) ScanVisible(Segment seg, int off, long seq, long stopAt, bool forward = false)
    {
        if (seg.IsReaderView) return ScanDurable(seg, off, seq, stopAt); // a reader process: durable records only (Exporter.ReadOnly.cs)
        // Acquire load of DurableSequence: pairs with the flusher's release store, which it made after
        // reading every commit word of this segment (so all of them are published) and after storing the
        // header watermark (Flush's segmentDone path, or Recovery for segments found on open).
        if (!forward && _queue.SegmentStartingAfter(seg)?.BaseSequence is { } nextBase && nextBase <= stopAt && _queue.DurableSequence >= nextBase
            && SealedEnd(seg, nextBase) is int end && end >= off)
            return (end, nextBase, true);
        (int e, long s, bool done, _) = Walk(seg, off, seq, stopAt, durableEnd: int.MaxValue);
        return (e, s, done);
    }

    /// <summary>
    /// The walk of <see cref="ScanVisible"/> and <see cref="ScanDurable"/>: frames from (off, seq), stopping before
    /// <paramref name="stopAt"/>, at a frame not published yet, at the segment's end (done), or at
    /// <paramref name="durableEnd"/> (Reached: a reader process's limit, below which every frame must be published).
    /// </summary>
    private static (int End, long Sequence, bool SegmentDone, bool Reached) Walk(Segment seg, int off, long seq, long stopAt, int durableEnd)
    {
        var cursor = new FrameCursor(seg.Bytes, off, seq); // acquire-loads each commit word: pairs with PublishWord
        while (cursor.Offset < durableEnd)
        {
            switch (cursor.Read(verifyCrc: false))
            {
                case FrameKind.Payload:
                case FrameKind.Aborted:
                    if (cursor.Sequence >= stopAt) return (cursor.Offset, cursor.Sequence, false, false);
                    cursor.Advance();
                    continue;
                case FrameKind.Empty or FrameKind.Claimed when durableEnd != int.MaxValue: // the writer flushed past it: damage
                    throw QueueCorruptedException.At(seg.Path, cursor.Offset, $"a published record below the durable watermark {durableEnd}", $"{cursor.Kind}");
                case FrameKind.Empty or FrameKind.Claimed when seg.ZeroWordIsCorruptAt(cursor.Offset, cursor.Sequence): // not "nothing yet": a hole opening found no cause to walk
                    FrameProblem hole = seg.ZeroWordProblem(cursor.Offset, cursor.Sequence, seg.ReadWord(cursor.Offset));
                    throw QueueCorruptedException.At(seg.Path, cursor.Offset, hole.Expected, hole.Found);
                case FrameKind.Empty:
                case FrameKind.Claimed: // export stops at a claim: the record is not published yet
                    return (cursor.Offset, cursor.Sequence, false, false);
                case FrameKind.EndOfSegment:
                case FrameKind.SegmentFull:
                    return (cursor.End, cursor.Sequence, true, false);
                default:
                    throw QueueCorruptedException.At(seg.Path, cursor.Offset, cursor.Problem!.Value.Expected, cursor.Problem.Value.Found);
            }
        }
        return (cursor.Offset, cursor.Sequence, false, true);
    }

    /// <summary>
    /// The end of a segment that is durable as a whole, from its header watermark (<see cref="Frames.SealedEnd"/>).
    /// Null when the watermark does not prove it; the caller then walks.
    /// </summary>
    private static int? SealedEnd(Segment seg, long nextBase) =>
        Frames.SealedEnd(SegmentHeader.ReadDurableEnd(seg.Bytes), seg.Size, nextBase, (offset, into) =>
        {
            seg.Bytes.Slice((int)offset, into.Length).CopyTo(into);
            return true;
        });
}
