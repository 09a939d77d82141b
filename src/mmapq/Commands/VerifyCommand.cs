using System.CommandLine;
using MmapQueues.Storage;
using Spectre.Console;

namespace MmapQueues.Cli.Commands;

/// <summary><c>mmapq verify DIR</c>: checks every header and every record's CRC; exit 0 when clean, 1 on corruption.</summary>
internal static class VerifyCommand
{
    public static Command Create(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var command = new Command("verify", "Check every segment header and every record's CRC32C; prints the file and offset of anything bad. Exit code 0 when clean, 1 when corrupt.") { directory };
        command.SetAction((parse, ct) => MmapqCli.WithQueue(io, parse.GetValue(directory)!, q => Task.FromResult(Run(io, q))));
        return command;
    }

    private static int Run(CliIo io, QueueInspector q)
    {
        int files = q.ListSegments().Count;
        VerifyReport report = io.Console.Progress().AutoClear(true).Start(ctx =>
        {
            var task = ctx.AddTask($"verifying {files} segments", maxValue: Math.Max(1, files * (double)q.SegmentSize));
            VerifyReport r = q.Verify(bytes => task.Increment(bytes));
            task.Value = task.MaxValue;
            return r;
        });
        foreach (Finding f in report.Findings)
            io.Data.WriteLine($"{(f.IsError ? "BAD" : "WARN")} {TerminalText.Escape(f.File)} offset {f.Offset}: {TerminalText.Escape(f.Message)}");
        int errors = report.Findings.Count(f => f.IsError);
        io.Data.WriteLine(report.Ok
            ? $"OK: {report.Records:N0} records in {report.Segments} segments, every CRC matches ({report.Findings.Count} warnings)."
            : $"CORRUPT: {errors} problem(s) in {report.Segments} segments ({report.Records:N0} records checked before them).");
        return report.Ok ? ExitCodes.Ok : ExitCodes.Corrupt;
    }
}
