using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Cli;

/// <summary>Where a walk over the queue stopped, so <c>tail -f</c> can resume there.</summary>
internal sealed record WalkPosition(InspectedSegment Segment, int Offset, long Sequence, SegmentEnding Ending, string? Problem);

/// <summary>Records [<paramref name="from"/>, <paramref name="to"/>) could not be read: <paramref name="file"/> was deleted first.</summary>
internal delegate void Skipped(long from, long to, string file);

/// <summary>Walks records across segments from a sequence, for dump and tail.</summary>
internal static class RecordWalk
{
    /// <summary>The segments and the stored range [first, next) (next found by scanning the last segment without CRC checks).</summary>
    public static (List<InspectedSegment> Segments, long First, long Next) Range(QueueInspector q)
    {
        var (segments, tail) = q.ListWithTail();
        return tail is null ? (segments, 0, 0) : (segments, segments[0].BaseSequence, tail.NextSequence);
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for records from <paramref name="from"/> on (CRC-checked), across segments,
    /// until it returns false or the records end. Returns where it stopped.
    /// </summary>
    public static WalkPosition Walk(QueueInspector q, List<InspectedSegment> segments, long from, RecordVisitor visit, Skipped skipped)
    {
        int i = segments.FindLastIndex(s => s.BaseSequence <= from);
        if (i < 0) i = 0;
        return Continue(q, segments, Start(segments[i]), from, visit, skipped);
    }

    /// <summary>
    /// Resumes a walk at <paramref name="at"/>, moving to the next segment when one ends. A segment that
    /// retention deleted before the walk opened it is skipped: the walk goes on at the oldest segment now
    /// stored after it and tells <paramref name="skipped"/> which records it could not read.
    /// </summary>
    public static WalkPosition Continue(QueueInspector q, List<InspectedSegment> segments, WalkPosition at, long from, RecordVisitor visit, Skipped skipped)
    {
        while (true)
        {
            SegmentScan scan;
            try
            {
                scan = q.Scan(at.Segment, visit, from, verifyCrc: true, offset: at.Offset, sequence: at.Sequence);
            }
            catch (FileNotFoundException)
            {
                segments = q.ListSegments();
                long gone = at.Segment.BaseSequence;
                int after = segments.FindIndex(s => s.BaseSequence > gone);
                if (after < 0) return at; // nothing newer listed yet: tail -f looks again at its next poll
                skipped(at.Sequence, segments[after].BaseSequence, at.Segment.Path);
                at = Start(segments[after]);
                continue;
            }
            at = new WalkPosition(at.Segment, scan.End, scan.NextSequence, scan.Ending,
                scan.Problem is { } p ? $"expected {p.Expected}, found {p.Found}" : null);
            if (scan.Stopped || scan.Ending is SegmentEnding.Open or SegmentEnding.Bad or SegmentEnding.Claim) return at;
            int next = segments.FindIndex(s => s.BaseSequence == scan.NextSequence);
            if (next < 0) return at; // sealed, and the next segment is not listed yet
            at = Start(segments[next]);
        }
    }

    /// <summary>A one-line note for <see cref="Skipped"/>, written to the error stream (records go to the data stream).</summary>
    public static Skipped ReportTo(CliIo io) => (from, to, file) =>
        io.Error.WriteLine($"note: records [{from}, {to}) were deleted by retention before mmapq could read them ({TerminalText.Escape(Path.GetFileName(file))} was gone); going on at {to}");

    private static WalkPosition Start(InspectedSegment s) => new(s, SegmentLayout.FirstRecordOffset, s.BaseSequence, SegmentEnding.Open, null);
}
