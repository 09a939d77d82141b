using MmapQueues.Format;
using MmapQueues.Storage;
using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>
/// The segments' sparse indexes (seek support): a sealed segment's index is loaded from its <c>.idx</c> side
/// file when that checks out, else rebuilt by one scan and written back; after a roll it is built off the
/// writer's thread. A side file is only ever a hint: an entry that does not land on its record is rebuilt.
/// </summary>
/// <remarks>No lock of its own: each <see cref="SegmentIndex"/> guards its entries, and a segment installs
/// its index once (<see cref="Segment.SetIndex"/>, a compare-and-swap).</remarks>
internal sealed class SegmentIndexes(long segmentSize, Guid queueId, UnixFileMode fileMode, ILogger logger, SegmentList segments, BackgroundWork background,
                                     Action afterBuild) // after each background build: the queue schedules a retention pass
{
    /// <summary>
    /// The indexed position at or before record <paramref name="recordNumber"/> of <paramref name="seg"/>
    /// (held by the caller). A sealed segment's index comes from its side file when that checks out, and is
    /// otherwise rebuilt by one scan of commit words and written back; the active segment's index lives in
    /// memory and grows as seeks need it.
    /// </summary>
    public (int Record, int Offset) Locate(Segment seg, int recordNumber)
    {
        SegmentIndex index = seg.Index ?? seg.SetIndex(LoadOrBuildIndex(seg));
        (int record, int offset) = index.Locate(seg, recordNumber);
        if (index.IsHint && !LandsOnRecord(seg, record, offset))
        {
            Log.IndexRebuilt(logger, seg.IndexPath, $"entry ({record}, {offset}) does not point at record {seg.BaseSequence + record}");
            seg.DropIndex(index);
            QueueFiles.Delete(seg.IndexPath);
            index = seg.SetIndex(LoadOrBuildIndex(seg, trustFile: false));
            (record, offset) = index.Locate(seg, recordNumber);
        }
        return (record, offset);
    }

    private SegmentIndex LoadOrBuildIndex(Segment seg, bool trustFile = true)
    {
        long? records = SealedRecordCount(seg);
        if (records is null) return new SegmentIndex(segmentSize); // the active segment: built as seeks need it
        if (trustFile)
        {
            SegmentIndex? loaded = SegmentIndex.TryLoad(seg.IndexPath, seg.BaseSequence, segmentSize, queueId, out string problem);
            if (loaded is not null) return loaded;
            if (problem != "missing") Log.IndexRebuilt(logger, seg.IndexPath, problem);
        }
        var built = new SegmentIndex(segmentSize);
        built.Complete(seg, records.Value);
        TryWriteIndex(seg, built);
        return built;
    }

    /// <summary>Records in a sealed segment (the next segment's base minus its own), or null for the active one.</summary>
    private long? SealedRecordCount(Segment seg)
    {
        Segment? next = segments.After(seg);
        return next is null ? null : next.BaseSequence - seg.BaseSequence;
    }

    /// <summary>Checks a hint from a side file: the frame there must carry the sequence the entry claims (its CRC covers it).</summary>
    private static bool LandsOnRecord(Segment seg, int record, int offset)
    {
        if (offset < SegmentLayout.FirstRecordOffset || offset % SegmentLayout.RecordAlignment != 0 || offset > seg.Size) return false;
        var cursor = new FrameCursor(seg.Bytes, offset, seg.BaseSequence + record);
        return cursor.Read(verifyCrc: true) is FrameKind.Payload or FrameKind.Aborted or FrameKind.EndOfSegment or FrameKind.SegmentFull;
    }

    /// <summary>
    /// After a roll, off the writer's thread: complete the sealed segment's index and write its side file.
    /// Owns the writer's reference on <paramref name="sealedSegment"/>: producers that reserved before the seal
    /// may still be copying into the mapping, so it is released only once the scan saw every record published.
    /// </summary>
    public void BuildInBackground(Segment sealedSegment, long records) => background.Run(() =>
    {
        try
        {
            SegmentIndex index = sealedSegment.Index ?? sealedSegment.SetIndex(new SegmentIndex(segmentSize));
            if (index.IsHint) index = new SegmentIndex(segmentSize); // not written back: only waits for the producers
            index.Complete(sealedSegment, records);
            if (index == sealedSegment.Index) TryWriteIndex(sealedSegment, index);
        }
        finally
        {
            sealedSegment.Release(); // unmaps it when no reader is on it: sealed segments nobody reads stay unmapped
        }
        // A retention pass while this build held the segment skipped it (it looked held by a reader): look again.
        afterBuild();
    });

    private void TryWriteIndex(Segment seg, SegmentIndex index)
    {
        try
        {
            index.Write(seg.IndexPath, seg.BaseSequence, queueId, fileMode);
        }
        catch (IOException e)
        {
            Log.IndexWriteFailed(logger, seg.IndexPath, e); // a hint only: seeks rebuild it in memory meanwhile
        }
    }
}
