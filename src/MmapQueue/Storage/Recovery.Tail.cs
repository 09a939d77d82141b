using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>Opening the tail segment without walking its durable prefix (v2 headers; docs/DECISIONS.md, "O(1) open").</summary>
internal static partial class Recovery
{
    /// <summary>
    /// Where the walk of a segment starts. The tail of a v2 segment: at its watermark, at the sequence the
    /// watermark names (every record before it was durable, so open leaves those CRCs to readers and
    /// <c>mmapq verify</c>), provided the frame there confirms the pair: a record or end marker whose CRC holds
    /// for that sequence (the CRC covers it), a claim whose claim CRC holds for it, or a zero word with nothing but zeros after it (then
    /// <c>NothingPast</c>: nothing to walk or repair). A torn frame there cannot be told from a
    /// damaged watermark, so then, like a v1 header (no record count) and a segment before the tail (whose
    /// walk decides which later files are a torn remainder), the segment is walked from its first record.
    /// </summary>
    private static (int Offset, long Sequence, bool NothingPast) WalkStart(Segment seg, SegmentHeader header, bool isTail)
    {
        var fromFirst = (SegmentLayout.FirstRecordOffset, seg.BaseSequence, false);
        if (!isTail || header.DurableRecords is null) return fromFirst;
        var (start, sequence) = WatermarkFrame(seg, header);
        switch (new FrameCursor(seg.Bytes, start, sequence).Read(verifyCrc: true))
        {
            case FrameKind.Payload or FrameKind.Aborted or FrameKind.EndOfSegment or FrameKind.SegmentFull:
                return (start, sequence, false);
            case FrameKind.Claimed when Frames.ClaimHolds(seg.Bytes, start, seg.ReadWord(start), sequence): // its claim CRC covers the sequence too
                return (start, sequence, false);
            case FrameKind.Empty when seg.Bytes[start..].IndexOfAnyExcept((byte)0) < 0:
                return (start, sequence, true);
            default:
                return fromFirst;
        }
    }

    /// <summary>
    /// The frame a v2 watermark points at and the sequence there: the watermark itself, or the end marker just
    /// before it (sealed, but the next segment's rename was lost: the tail must stay sealed).
    /// </summary>
    private static (int Offset, long Sequence) WatermarkFrame(Segment seg, SegmentHeader header)
    {
        int end = (int)header.DurableEnd;
        long sequence = seg.BaseSequence + header.DurableRecords!.Value;
        int marker = end - SegmentLayout.RecordHeaderSize;
        bool afterMarker = end < seg.Size && marker >= SegmentLayout.FirstRecordOffset
            && new FrameCursor(seg.Bytes, marker, sequence).Read(verifyCrc: true) == FrameKind.EndOfSegment; // its CRC names `sequence`
        return (afterMarker ? marker : end, sequence);
    }

    /// <summary>
    /// A tail closed cleanly (v2 CLEAN_CLOSE, whose check of the watermark <see cref="SegmentHeader.Check"/>
    /// verified): its watermark is exact and the bytes past it zero on disk, so nothing is walked and nothing
    /// past the watermark's page read. Only that page is looked at: nothing at the watermark and zeros to the
    /// page's end (open), or an end marker for the next sequence, or no room for one (sealed). Anything else
    /// means the flag does not describe the file (bytes written after the close): null, and the tail is walked.
    /// </summary>
    private static (long Records, int End, bool Sealed)? TrustCleanClose(Segment seg, SegmentHeader header)
    {
        if (!header.CleanClose) return null;
        var (end, sequence) = WatermarkFrame(seg, header);
        long records = sequence - seg.BaseSequence;
        int pageEnd = (int)Math.Min(seg.Size, (end / SegmentLayout.PageSize + 1L) * SegmentLayout.PageSize);
        return new FrameCursor(seg.Bytes, end, sequence).Read(verifyCrc: true) switch
        {
            FrameKind.Empty when seg.Bytes[end..pageEnd].IndexOfAnyExcept((byte)0) < 0 => (records, end, false),
            FrameKind.EndOfSegment or FrameKind.SegmentFull => (records, end, true),
            _ => null,
        };
    }

    /// <summary>
    /// Makes the recovered last segment the writer's: clears CLEAN_CLOSE and syncs the header (a kill from
    /// here on must not find the flag set over records appended later), sets where appending resumes, and
    /// what readers may take for the end of its records (<see cref="Segment.ZeroWordIsCorruptAt"/>).
    /// </summary>
    private static RecoveredQueue ResumeTail(List<Segment> segments, Segment seg, long records, int end, bool sealedHere, int scanned)
    {
        SegmentHeader.WriteCleanClose(seg.Bytes, clean: false); // a v1 header has none: left as it is
        seg.Region.Flush(0, SegmentLayout.HeaderSize, seg.Path);
        seg.ResumeAt(records, end);
        if (sealedHere || end + SegmentLayout.RecordHeaderSize > seg.Size) seg.Seal();
        seg.FlushedOffset = end;
        seg.Watermark = end;
        seg.RecoveredEnd = end;
        seg.RecoveredNext = seg.BaseSequence + records;
        return new RecoveredQueue(segments, seg.BaseSequence + records, end, scanned); // the writer keeps this reference
    }
}
