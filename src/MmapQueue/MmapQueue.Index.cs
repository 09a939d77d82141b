using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    /// <summary>
    /// The indexed position at or before record <paramref name="recordNumber"/> of <paramref name="seg"/>
    /// (held by the caller). A sealed segment's index comes from its side file when that checks out, and is
    /// otherwise rebuilt by one scan of commit words and written back; the active segment's index lives in
    /// memory and grows as seeks need it.
    /// </summary>
    private (int Record, int Offset) LocateInSegment(Segment seg, int recordNumber)
    {
        SegmentIndex index = seg.Index ?? seg.SetIndex(LoadOrBuildIndex(seg));
        (int record, int offset) = index.Locate(seg, recordNumber);
        if (index.IsHint && !LandsOnRecord(seg, record, offset))
        {
            Log.IndexRebuilt(_logger, seg.IndexPath, $"entry ({record}, {offset}) does not point at record {seg.BaseSequence + record}");
            seg.DropIndex(index);
            File.Delete(seg.IndexPath);
            index = seg.SetIndex(LoadOrBuildIndex(seg, trustFile: false));
            (record, offset) = index.Locate(seg, recordNumber);
        }
        return (record, offset);
    }

    private SegmentIndex LoadOrBuildIndex(Segment seg, bool trustFile = true)
    {
        long? records = SealedRecordCount(seg);
        if (records is null) return new SegmentIndex(_segmentSize); // the active segment: built as seeks need it
        if (trustFile)
        {
            SegmentIndex? loaded = SegmentIndex.TryLoad(seg.IndexPath, seg.BaseSequence, _segmentSize, _queueId, out string problem);
            if (loaded is not null) return loaded;
            if (problem != "missing") Log.IndexRebuilt(_logger, seg.IndexPath, problem);
        }
        var built = new SegmentIndex(_segmentSize);
        built.Complete(seg, records.Value);
        TryWriteIndex(seg, built);
        return built;
    }

    /// <summary>Records in a sealed segment (the next segment's base minus its own), or null for the active one.</summary>
    private long? SealedRecordCount(Segment seg)
    {
        Segment? next = _segments.After(seg);
        return next is null ? null : next.BaseSequence - seg.BaseSequence;
    }

    /// <summary>Checks a hint from a side file: the frame there must carry the sequence the entry claims (its CRC covers it).</summary>
    private static bool LandsOnRecord(Segment seg, int record, int offset)
    {
        Span<byte> bytes = seg.Bytes;
        if (offset < SegmentLayout.FirstRecordOffset || offset % SegmentLayout.RecordAlignment != 0 || offset > bytes.Length) return false;
        uint word = offset + SegmentLayout.RecordHeaderSize <= bytes.Length ? seg.ReadWord(offset) : 0;
        FrameKind kind = Frames.Classify(bytes, offset, word, seg.BaseSequence + record, verifyCrc: true, out _, out _);
        return kind is FrameKind.Payload or FrameKind.Aborted or FrameKind.EndOfSegment or FrameKind.SegmentFull;
    }

    /// <summary>
    /// After a roll, off the writer's thread: complete the sealed segment's index and write its side file.
    /// Owns the writer's reference on <paramref name="sealedSegment"/>: producers that reserved before the seal
    /// may still be copying into the mapping, so it is released only once the scan saw every record published.
    /// </summary>
    private void BuildIndexInBackground(Segment sealedSegment, long records) => _background.Run(() =>
    {
        try
        {
            SegmentIndex index = sealedSegment.Index ?? sealedSegment.SetIndex(new SegmentIndex(_segmentSize));
            if (index.IsHint) index = new SegmentIndex(_segmentSize); // not written back: only waits for the producers
            index.Complete(sealedSegment, records);
            if (index == sealedSegment.Index) TryWriteIndex(sealedSegment, index);
        }
        finally
        {
            sealedSegment.Release(); // unmaps it when no reader is on it: sealed segments nobody reads stay unmapped
        }
        // A retention pass while this build held the segment skipped it (it looked held by a reader): look again.
        _retention.Schedule();
    });

    private void TryWriteIndex(Segment seg, SegmentIndex index)
    {
        try
        {
            index.Write(seg.IndexPath, seg.BaseSequence, _queueId);
        }
        catch (IOException e)
        {
            Log.IndexWriteFailed(_logger, seg.IndexPath, e); // a hint only: seeks rebuild it in memory meanwhile
        }
    }
}
