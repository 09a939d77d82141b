using System.CommandLine;
using MmapQueues.Format;
using MmapQueues.Storage;
using Spectre.Console;

namespace MmapQueues.Cli.Commands;

/// <summary><c>mmapq info DIR</c>: the queue's identity, its sequences, a table of segments and one of named consumers.</summary>
internal static class InfoCommand
{
    public static Command Create(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var command = new Command("info", "Show segments, sequences, sizes and the last writer (read-only; safe while a writer runs).") { directory };
        command.SetAction((parse, ct) => MmapqCli.WithQueue(io, parse.GetValue(directory)!, q => Task.FromResult(Run(io, q))));
        return command;
    }

    private static int Run(CliIo io, QueueInspector q)
    {
        var (segments, tail) = q.ListWithTail(); // as the queue is now, even if retention deletes under it
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("segment").NoWrap()).AddColumn(new TableColumn("first sequence").RightAligned())
            .AddColumn(new TableColumn("records").RightAligned()).AddColumn(new TableColumn("used bytes").RightAligned())
            .AddColumn(new TableColumn("durable end").RightAligned()).AddColumn("state");
        long next = 0, used = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            InspectedSegment s = segments[i];
            bool last = i == segments.Count - 1;
            string records, bytes, state;
            if (!last)
            {
                // Sealed: the count follows from the next segment's base, no scan needed.
                records = (segments[i + 1].BaseSequence - s.BaseSequence).ToString("N0");
                bytes = s.DurableEnd > SegmentLayout.FirstRecordOffset ? s.DurableEnd.ToString("N0") : "?";
                state = "sealed";
            }
            else
            {
                SegmentScan scan = tail!;
                next = scan.NextSequence;
                used = scan.End;
                records = scan.Records.ToString("N0");
                bytes = scan.End.ToString("N0");
                state = scan.Ending switch
                {
                    SegmentEnding.Open => "active",
                    SegmentEnding.Claim => $"active ({Markup.Escape(scan.Problem!.Value.Found)})",
                    SegmentEnding.Bad => $"[red]bad frame at {scan.End}[/]",
                    _ => "sealed (next not created yet)",
                };
            }
            table.AddRow(Markup.Escape(Path.GetFileName(s.Path)), s.BaseSequence.ToString("N0"), records, bytes, s.DurableEnd.ToString("N0"), state);
        }

        long first = segments.Count > 0 ? segments[0].BaseSequence : 0;
        var c = io.Console;
        c.MarkupLineInterpolated($"[bold]queue[/]     {TerminalText.Escape(q.Directory)}");
        string versions = segments.Count == 0 ? $"{SegmentLayout.FormatVersion}" : string.Join(", ", segments.Select(s => s.Version).Distinct().Order());
        c.MarkupLineInterpolated($"[bold]id[/]        {q.QueueId}   segment format version {versions}");
        c.MarkupLineInterpolated($"[bold]sequences[/] [[{first}, {next})   {next - first:N0} records stored");
        c.MarkupLineInterpolated($"[bold]disk[/]      {segments.Count} segments of {Bytes(q.SegmentSize)} = {Bytes(segments.Count * q.SegmentSize)} (tail uses {Bytes(used)})");
        c.MarkupLineInterpolated($"[bold]writer[/]    {Writer(q.Directory)}");
        c.Write(table);
        return WriteConsumers(io, q, segments, tail, first);
    }

    private static int WriteConsumers(CliIo io, QueueInspector q, List<InspectedSegment> segments, SegmentScan? tail, long first)
    {
        CursorState? state;
        try
        {
            state = InfoConsumers.Read(q);
        }
        catch (QueueCorruptedException e)
        {
            io.Console.MarkupLine("[bold]consumers[/] unreadable (see the error below)");
            io.Fail(e.Message); // one line: the file, the offset, what each slot held
            return ExitCodes.Corrupt;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) // e.g. another user's 0600 file
        {
            io.Console.MarkupLine("[bold]consumers[/] unreadable (see the error below)");
            io.Fail(e.Message);
            return ExitCodes.CannotOpen;
        }
        if (state is null || state.Committed.Count == 0)
        {
            io.Console.MarkupLine(state is null ? "[bold]consumers[/] none (no cursors file)" : "[bold]consumers[/] none");
            return ExitCodes.Ok;
        }
        io.Console.MarkupLineInterpolated($"[bold]consumers[/] {state.Committed.Count} named (lag in bytes is estimated from segment positions)");
        io.Console.Write(InfoConsumers.Table(InfoConsumers.Lag(state, segments, tail, q.SegmentSize), first, q.Directory));
        return ExitCodes.Ok;
    }

    private static string Writer(string directory)
    {
        string lockFile = Path.Combine(directory, SegmentNames.LockName);
        if (!Path.Exists(lockFile)) return "never opened for writing";
        // ReadHolder takes no lock (a live writer holds it) and follows no link: a lock file replaced by a
        // link to another file is reported, its target never read. The text is the file's: escape it.
        string holder;
        try
        {
            holder = QueueDirectory.ReadHolder(lockFile); // "process pid N (path)" as the writer recorded it
        }
        catch (IOException e)
        {
            return $"unknown ({TerminalText.Escape(e.Message)})";
        }
        string[] parts = holder.Split(' ', 4);
        if (parts.Length >= 3 && parts[1] == "pid" && int.TryParse(parts[2], out int pid))
            return $"pid {pid} ({(Directory.Exists($"/proc/{pid}") ? "running" : "not running")}), from the lock file";
        return TerminalText.Escape(holder);
    }

    internal static string Bytes(long n) => n switch
    {
        >= 1L << 30 => $"{n / (double)(1L << 30):0.#} GiB",
        >= 1L << 20 => $"{n / (double)(1L << 20):0.#} MiB",
        >= 1L << 10 => $"{n / 1024.0:0.#} KiB",
        _ => $"{n} B",
    };
}
