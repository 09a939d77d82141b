using MmapQueues.Format;
using MmapQueues.Storage;
using Spectre.Console;

namespace MmapQueues.Cli.Commands;

/// <summary>One named consumer as <c>mmapq info</c> shows it.</summary>
internal sealed record ConsumerLag(string Name, long Committed, long LagRecords, long LagBytes);

/// <summary>
/// The named consumers of a queue, read from its <c>cursors</c> file without a lock (read-only, no link
/// followed), with how far each is behind the end of the queue.
/// </summary>
internal static class InfoConsumers
{
    /// <summary>How many times a cursors file that fails to decode is read again before it is called corrupt.</summary>
    private const int ReadAttempts = 3;

    /// <summary>
    /// The committed positions, or null without a cursors file. The file is two slots and a writer rewrites
    /// one in place while the other holds the previous state, so a read racing a commit still finds a valid
    /// slot; a read that raced two commits in a row can find none, hence a few attempts before
    /// <see cref="QueueCorruptedException"/> (which names the file, the offset and both slots' problems).
    /// </summary>
    public static CursorState? Read(QueueInspector q)
    {
        string path = Path.Combine(q.Directory, SegmentNames.CursorsName);
        for (int attempt = 1; ; attempt++)
        {
            byte[]? bytes = QueueFiles.TryReadAll(path, 2 * CursorFile.MaxSlotSize);
            if (bytes is null) return null;
            try
            {
                return CursorFile.Decode(bytes, q.QueueId, path);
            }
            catch (QueueCorruptedException) when (attempt < ReadAttempts)
            {
                Thread.Sleep(10); // let a commit in flight finish
            }
        }
    }

    /// <summary>
    /// Each consumer's lag: records are exact (queue end minus committed position). Bytes are estimated from
    /// segment positions, not by scanning: every segment wholly after the position counts its used bytes, the
    /// one holding it counts them in proportion to the records after the position.
    /// </summary>
    public static List<ConsumerLag> Lag(CursorState state, List<InspectedSegment> segments, SegmentScan? tail, long segmentSize)
    {
        var rows = new List<ConsumerLag>(state.Committed.Count);
        long next = tail?.NextSequence ?? 0;
        foreach (var (name, committed) in state.Committed.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            double bytes = 0;
            for (int i = 0; i < segments.Count; i++)
            {
                long first = segments[i].BaseSequence, end = i + 1 < segments.Count ? segments[i + 1].BaseSequence : next;
                if (end <= committed || end <= first) continue;
                long used = (i + 1 < segments.Count ? SealedEnd(segments[i], segmentSize) : tail!.End) - SegmentLayout.FirstRecordOffset;
                bytes += committed <= first ? used : used * (double)(end - committed) / (end - first);
            }
            rows.Add(new ConsumerLag(name, committed, Math.Max(0, next - committed), (long)bytes));
        }
        return rows;
    }

    /// <summary>A table of the consumers; names come from a file, so they are escaped.</summary>
    public static Table Table(List<ConsumerLag> rows, long first, string directory)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("consumer").NoWrap()).AddColumn(new TableColumn("committed").RightAligned())
            .AddColumn(new TableColumn("lag (records)").RightAligned()).AddColumn(new TableColumn("lag (bytes, est.)").RightAligned())
            .AddColumn("held by");
        foreach (ConsumerLag c in rows)
        {
            string committed = c.Committed.ToString("N0") + (c.Committed < first ? " (below the first stored record)" : "");
            table.AddRow(Markup.Escape(TerminalText.Escape(c.Name)), Markup.Escape(committed), c.LagRecords.ToString("N0"),
                InfoCommand.Bytes(c.LagBytes), Markup.Escape(Holder(directory, c.Name)));
        }
        return table;
    }

    /// <summary>Which process owns the consumer now (pid, process name, user: text from a file, made safe), "—" when none does.</summary>
    private static string Holder(string directory, string name)
    {
        try
        {
            return Processes.ConsumerOwnership.CurrentHolder(directory, name) ?? "—";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or QueueCorruptedException)
        {
            return $"unknown ({TerminalText.Escape(e.Message)})"; // e.g. another user's 0600 lock file
        }
    }

    // A sealed segment's watermark is where its records end; one never flushed says 0, then assume it is full.
    private static long SealedEnd(InspectedSegment s, long segmentSize) =>
        s.DurableEnd > SegmentLayout.FirstRecordOffset ? s.DurableEnd : segmentSize;
}
