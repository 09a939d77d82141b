using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Shipping;

/// <summary>
/// Export from a reader process (a queue opened with <see cref="MmapQueueOptions.ReadOnly"/>). The writer's flusher is
/// in another process, so what is durable is read from each segment's header watermark (durableEnd, and in version 2
/// durableRecords): the flusher stores it only after the msync of the records below it returned, so nothing past what
/// the writer flushed is ever sent. It lags: a sealed segment's watermark is exact from the flush that passed its end,
/// the active segment's moves every 1 MiB of records and on the writer's Dispose. A reader lease (<see cref="ReaderLease"/>)
/// names the segment the session reads or sends from, so the writer's retention neither deletes nor recycles it.
/// </summary>
internal sealed partial class Exporter
{
    private ReaderLease? _lease; // a reader process's session: pins the segment it is on (null in the writer's process)

    /// <summary>
    /// Takes a reference on <paramref name="seg"/>, which holds <paramref name="sequence"/>. A reader process registers
    /// its lease there first, then maps the segment and checks it is still the file its name holds (a retention pass
    /// that listed the leases just before the registration may have taken it): false when it is not.
    /// </summary>
    private bool Hold(Segment seg, long sequence)
    {
        if (!seg.IsReaderView)
        {
            seg.Acquire();
            return true;
        }
        _queue.PinLease(ref _lease, sequence); // before the mapping: retention keeps the segment from here on
        if (!seg.TryAcquire()) return false;   // maps and checks the header against the name (base sequence, queue id)
        if (!seg.HasVanished(force: true)) return true;
        seg.Release();
        return false;
    }

    /// <summary>
    /// Moves the session from <paramref name="from"/> to the next segment <paramref name="next"/> (starting at
    /// <paramref name="sequence"/>): the lease, still in <paramref name="from"/>, pins <paramref name="next"/> too while it is mapped.
    /// </summary>
    private void HandOver(Segment from, Segment next, long sequence)
    {
        if (next.IsReaderView && (!next.TryAcquire() || ReleaseIfVanished(next)))
            throw new IOException($"Shipping {_queue.Path}: segment {next.Path} was deleted or recycled while this session's reader lease " +
                                  $"(sequence {_lease?.LowestSequence}) pinned it; expected it kept until the session moved past it.");
        if (!next.IsReaderView) next.Acquire();
        from.Release();
        _queue.PinLease(ref _lease, sequence); // forward: the old position pinned everything from there on, no wait
    }

    private static bool ReleaseIfVanished(Segment seg)
    {
        if (!seg.HasVanished(force: true)) return false;
        seg.Release();
        return true;
    }

    /// <summary>
    /// A reader process's file for sendfile, opened by name after the mapping: its header is checked again, so a file
    /// the writer recycled (renamed, zeroed and reused under a later base) is never sent as this segment's records.
    /// </summary>
    private void CheckOpenedFile(Segment seg, FileStream file)
    {
        var bytes = new byte[SegmentLayout.HeaderSize];
        int read = RandomAccess.Read(file.SafeFileHandle, bytes, 0);
        FieldProblem? problem = read < bytes.Length
            ? new FieldProblem(0, $"a {SegmentLayout.HeaderSize}-byte segment header", $"{read} bytes")
            : SegmentHeader.Read(bytes).Check(seg.BaseSequence, seg.Size, _queue.QueueId);
        if (problem is not { } p) return;
        file.Dispose();
        throw new IOException($"Shipping {_queue.Path}: {seg.Path}, opened for sendfile, is no longer the segment this session mapped " +
                              $"(offset {p.Offset}: expected {p.Expected}, found {p.Found}); the writer removed or recycled it. Nothing was sent from it.");
    }

    /// <summary>
    /// The reader process's <see cref="ScanVisible"/>: walks from (off, seq) up to the header's durable watermark and no
    /// further (records past it may be in the page cache only, and a writer that crashes loses them). Stops before
    /// <paramref name="stopAt"/>; the segment is done at an end marker below the watermark, or when no frame fits after it.
    /// </summary>
    private static (int End, long Sequence, bool SegmentDone) ScanDurable(Segment seg, int off, long seq, long stopAt)
    {
        (long durableEnd, long? records) = SegmentHeader.ReadWatermarkShared(seg.Bytes); // partner: the flusher's store after its msync
        if (durableEnd < SegmentLayout.FirstRecordOffset || durableEnd > seg.Size || durableEnd % SegmentLayout.RecordAlignment != 0)
            throw QueueCorruptedException.At(seg.Path, SegmentLayout.WatermarkOffset,
                $"a durable watermark from {SegmentLayout.FirstRecordOffset} to {seg.Size}, a multiple of {SegmentLayout.RecordAlignment}", $"{durableEnd}");
        if (off >= durableEnd) return (off, seq, off == durableEnd && NoFrameFits(seg, off));
        (int end, long next, bool done, bool reached) = Walk(seg, off, seq, stopAt, (int)durableEnd);
        // At the watermark (reached, or an end marker that ends there) the walk must agree with it: a frame that crosses
        // it, or another record count than it claims, is a damaged header, and nothing past the damage is sent.
        if ((reached && end != durableEnd) || (end == durableEnd && records is { } n && seg.BaseSequence + n != next))
            throw QueueCorruptedException.At(seg.Path, SegmentLayout.WatermarkOffset,
                $"the durable watermark at a record boundary, {records?.ToString() ?? "?"} records before it",
                $"the walk from offset {off} reached offset {end}, sequence {next}, for durableEnd {durableEnd}");
        return reached ? (end, next, NoFrameFits(seg, end)) : (end, next, done);
    }

    private static bool NoFrameFits(Segment seg, int offset) => offset + SegmentLayout.RecordHeaderSize > seg.Size;

    /// <summary>True when the writer made records durable after <paramref name="off"/> in <paramref name="seg"/> (a reader process's wait).</summary>
    private static bool DurableAfter(Segment seg, int off) => SegmentHeader.ReadWatermarkShared(seg.Bytes).DurableEnd > off;
}
