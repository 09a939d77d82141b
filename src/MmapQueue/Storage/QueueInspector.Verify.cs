using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>A problem <c>verify</c> found: errors make it fail, warnings do not.</summary>
internal sealed record Finding(bool IsError, string File, long Offset, string Message);

internal sealed class VerifyReport
{
    public List<Finding> Findings { get; } = [];
    public long Records { get; set; }
    public long Segments { get; set; }
    public bool Ok => !Findings.Any(f => f.IsError);
}

internal static class QueueInspectorVerifyExtensions
{
    /// <summary>
    /// Checks every header and every record's CRC in every segment, with the rules recovery applies on open:
    /// a bad frame (or a zero word followed by data) before the durable watermark, or anywhere in a segment
    /// that is not the last, is corruption (an error); in the last segment after the watermark it is a torn
    /// or in-flight tail (a warning: the next open truncates it). Sealed segments must hold exactly the
    /// records up to the next segment's base sequence.
    /// </summary>
    /// <param name="inspector">The queue.</param>
    /// <param name="progress">Called with bytes checked, for a progress bar.</param>
    public static VerifyReport Verify(this QueueInspector inspector, Action<long>? progress = null)
    {
        var report = new VerifyReport();
        List<InspectedSegment> segments;
        var all = QueueDirectory.ListSegments(inspector.Directory);
        segments = [];
        foreach (var (b, path) in all)
        {
            try
            {
                var h = SegmentFiles.Validate(path, b, inspector.SegmentSize, inspector.QueueId);
                segments.Add(new InspectedSegment(path, b, h.DurableEnd, h.Version));
            }
            catch (QueueCorruptedException e)
            {
                report.Findings.Add(new Finding(true, e.FilePath, e.Offset, e.Message)); // reported, and the walk goes on with the others
            }
            catch (FileNotFoundException)
            {
                // retention deleted it between the listing and the read: not part of the queue any more
            }
        }
        report.Segments = all.Count;
        // Recovery's rule for what must be intact: every segment before the last one that holds durable data
        // (a watermark past its first record) end to end; that one and any after it up to their watermark.
        int lastWithDurableData = segments.FindLastIndex(s => s.DurableEnd > SegmentLayout.FirstRecordOffset);
        for (int i = 0; i < segments.Count; i++)
        {
            InspectedSegment s = segments[i];
            bool isLast = i == segments.Count - 1 && all[^1].Path == s.Path;
            SegmentScan scan;
            try
            {
                scan = inspector.Scan(s, verifyCrc: true, measureRemnant: true, progress: n => progress?.Invoke(n));
            }
            catch (FileNotFoundException)
            {
                report.Findings.Add(new Finding(false, s.Path, 0, "deleted by retention while verify ran (a writer is trimming the queue); not checked"));
                continue;
            }
            report.Records += scan.Records;
            long strictUntil = i < lastWithDurableData ? inspector.SegmentSize : s.DurableEnd;
            if (scan.Ending == SegmentEnding.Bad)
            {
                FrameProblem p = scan.Problem!.Value;
                bool error = scan.End < strictUntil;
                report.Findings.Add(new Finding(error, s.Path, scan.End, error
                    ? $"sequence {scan.NextSequence}: expected {p.Expected}, found {p.Found}"
                    : $"torn or in-flight tail after the durable watermark {s.DurableEnd} (sequence {scan.NextSequence}: expected {p.Expected}, found {p.Found}); the next open truncates it"));
            }
            else if (scan.Ending == SegmentEnding.Claim)
            {
                bool error = scan.End < strictUntil;
                report.Findings.Add(new Finding(error, s.Path, scan.End, error
                    ? $"sequence {scan.NextSequence}: {scan.Problem!.Value.Found} before the durable watermark {strictUntil}"
                    : $"sequence {scan.NextSequence}: {scan.Problem!.Value.Found}; a writer is still on it, or the next open turns it into an aborted record and keeps what follows"));
            }
            else if (scan.Ending == SegmentEnding.Open && scan.RemnantBytes > 0)
            {
                bool error = scan.End < strictUntil;
                report.Findings.Add(new Finding(error, s.Path, scan.End, error
                    ? $"expected a record (durable up to offset {strictUntil}), found a zero commit word followed by {scan.RemnantBytes} non-zero bytes"
                    : $"{scan.RemnantBytes} bytes of a torn or in-flight record after the last one (durable watermark {s.DurableEnd}); the next open truncates them"));
            }
            if (!isLast && i + 1 < segments.Count && scan.Ending != SegmentEnding.Bad)
            {
                long nextBase = segments[i + 1].BaseSequence;
                if (scan.NextSequence != nextBase && scan.Ending == SegmentEnding.Claim && scan.End >= strictUntil)
                    report.Findings.Add(new Finding(false, s.Path, scan.End,
                        $"records after the claim not checked (the next segment starts at {nextBase}); the next open turns the claim into an aborted record and walks on"));
                else if (scan.NextSequence != nextBase)
                    report.Findings.Add(new Finding(true, s.Path, scan.End,
                        $"records end at sequence {scan.NextSequence}, but the next segment starts at {nextBase}"));
                else if (scan.Ending == SegmentEnding.Open)
                    report.Findings.Add(new Finding(false, s.Path, scan.End,
                        "complete but without its end marker (the writer stopped during a roll); the next open writes it"));
            }
        }
        return report;
    }
}
