using System.CommandLine;
using MmapQueues.Storage;

namespace MmapQueues.Cli.Commands;

/// <summary><c>mmapq dump DIR [--from N] [--limit N] [--format text|hex|json]</c>.</summary>
internal static class DumpCommand
{
    public static Option<RecordFormat> FormatOption() =>
        new("--format") { Description = "text (one line a record), hex, or json (one object a line).", DefaultValueFactory = _ => RecordFormat.Text };

    public static Command Create(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var from = new Option<long?>("--from") { Description = "First sequence to print (default: the first stored)." };
        var limit = new Option<long>("--limit", "-n") { Description = "Print at most this many records (0: all).", DefaultValueFactory = _ => 100 };
        var format = FormatOption();
        var command = new Command("dump", "Print records (CRC-checked) from a sequence, as text, hex or JSON.") { directory, from, limit, format };
        command.SetAction((parse, ct) => MmapqCli.WithQueue(io, parse.GetValue(directory)!, q =>
            Task.FromResult(Run(io, q, parse.GetValue(from), parse.GetValue(limit), parse.GetValue(format)))));
        return command;
    }

    private static int Run(CliIo io, QueueInspector q, long? from, long limit, RecordFormat format)
    {
        var (segments, first, next) = RecordWalk.Range(q);
        long start = from ?? first;
        if (start < first || start > next)
        {
            io.Fail($"sequence {start} is not stored in {q.Directory}: it holds [{first}, {next}).");
            return ExitCodes.CannotOpen;
        }
        if (start == next) return ExitCodes.Ok;
        long printed = 0;
        WalkPosition end = RecordWalk.Walk(q, segments, start, (in InspectedRecord r) =>
        {
            RecordPrinter.Print(io.Data, r, format);
            return limit <= 0 || ++printed < limit;
        }, RecordWalk.ReportTo(io));
        if (end.Ending == SegmentEnding.Bad && end.Sequence < next)
        {
            io.Fail($"record {end.Sequence} in {end.Segment.Path} at offset {end.Offset} is bad: {end.Problem}; run mmapq verify.");
            return ExitCodes.Corrupt;
        }
        return ExitCodes.Ok;
    }
}
