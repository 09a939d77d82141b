using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Cli;

/// <summary>Where a walk over the queue stopped, so <c>tail -f</c> can resume there.</summary>
internal sealed record WalkPosition(InspectedSegment Segment, int Offset, long Sequence, SegmentEnding Ending, string? Problem);

/// <summary>Walks records across segments from a sequence, for dump and tail.</summary>
internal static class RecordWalk
{
    /// <summary>The stored range [first, next) (next found by scanning the last segment without CRC checks).</summary>
    public static (long First, long Next) Range(QueueInspector q, List<InspectedSegment> segments)
    {
        if (segments.Count == 0) return (0, 0);
        SegmentScan last = q.Scan(segments[^1], verifyCrc: false);
        return (segments[0].BaseSequence, last.NextSequence);
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for records from <paramref name="from"/> on (CRC-checked), across segments,
    /// until it returns false or the records end. Returns where it stopped.
    /// </summary>
    public static WalkPosition Walk(QueueInspector q, List<InspectedSegment> segments, long from, RecordVisitor visit)
    {
        int i = segments.FindLastIndex(s => s.BaseSequence <= from);
        if (i < 0) i = 0;
        return Continue(q, segments, new WalkPosition(segments[i], SegmentLayout.FirstRecordOffset, segments[i].BaseSequence, SegmentEnding.Open, null), from, visit);
    }

    /// <summary>Resumes a walk at <paramref name="at"/>, moving to the next segment when one ends.</summary>
    public static WalkPosition Continue(QueueInspector q, List<InspectedSegment> segments, WalkPosition at, long from, RecordVisitor visit)
    {
        while (true)
        {
            SegmentScan scan = q.Scan(at.Segment, visit, from, verifyCrc: true, offset: at.Offset, sequence: at.Sequence);
            at = new WalkPosition(at.Segment, scan.End, scan.NextSequence, scan.Ending,
                scan.Problem is { } p ? $"expected {p.Expected}, found {p.Found}" : null);
            if (scan.Stopped || scan.Ending is SegmentEnding.Open or SegmentEnding.Bad) return at;
            int next = segments.FindIndex(s => s.BaseSequence == scan.NextSequence);
            if (next < 0) return at; // sealed, and the next segment is not listed yet
            at = new WalkPosition(segments[next], SegmentLayout.FirstRecordOffset, segments[next].BaseSequence, SegmentEnding.Open, null);
        }
    }
}
