using System.CommandLine;
using MmapQueues.Storage;

namespace MmapQueues.Cli.Commands;

/// <summary>
/// <c>mmapq tail DIR [-n N] [-f]</c>: the last records, then (with -f) new ones as a writer appends them. With -f the queue
/// is opened read-only (<see cref="MmapQueueOptions.ReadOnly"/>): zero-copy reads of the shared mapping, a reader lease so
/// the writer frees no segment under it, and a wake-up through the notify page instead of polling. Where that open is
/// refused (no write access to <c>readers/</c> or <c>notify</c>: another user's queue), it polls with <c>pread</c> as without -f.
/// </summary>
internal static class TailCommand
{
    /// <summary>How often -f looks for new records and segments.</summary>
    internal static TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    public static Command Create(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var lines = new Option<long>("--lines", "-n") { Description = "How many of the last records to print first.", DefaultValueFactory = _ => 10 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing records as they are appended, until Ctrl+C." };
        var format = DumpCommand.FormatOption();
        var command = new Command("tail", "Print the last records; with -f, follow the queue as a writer appends.") { directory, lines, follow, format };
        command.SetAction((parse, ct) => MmapqCli.WithQueue(io, parse.GetValue(directory)!, q =>
            Run(io, q, parse.GetValue(lines), parse.GetValue(follow), parse.GetValue(format), ct)));
        return command;
    }

    private static async Task<int> Run(CliIo io, QueueInspector q, long lines, bool follow, RecordFormat format, CancellationToken ct)
    {
        if (follow && TryOpenReadOnly(q.Directory, lines) is var (live, reader))
        {
            using (live)
            using (reader)
                return await Follow(io, reader, format, ct).ConfigureAwait(false);
        }
        var (segments, first, next) = RecordWalk.Range(q);
        while (segments.Count == 0)
        {
            if (!follow) return ExitCodes.Ok;
            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
            (segments, first, next) = RecordWalk.Range(q);
        }
        long start = Math.Max(first, next - Math.Max(0, lines));
        RecordVisitor print = (in InspectedRecord r) =>
        {
            RecordPrinter.Print(io.Data, r, format);
            return true;
        };
        Skipped skipped = RecordWalk.ReportTo(io);
        WalkPosition at = RecordWalk.Walk(q, segments, start, print, skipped);
        io.Data.Flush();
        while (follow)
        {
            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
            // A frame that fails its CRC at the tail is most likely one the writer is still filling: look again
            // next time. New segments appear as the writer rolls.
            segments = q.ListSegments();
            at = RecordWalk.Continue(q, segments, at, start, print, skipped);
            io.Data.Flush();
        }
        return at.Ending == SegmentEnding.Bad ? ExitCodes.Corrupt : ExitCodes.Ok;
    }

    /// <summary>The queue opened read-only and a reader <paramref name="lines"/> records before its end; null when refused.</summary>
    private static (MmapQueue Queue, QueueReader Reader)? TryOpenReadOnly(string directory, long lines)
    {
        MmapQueue? queue = null;
        try
        {
            queue = new MmapQueue(directory, new MmapQueueOptions { ReadOnly = true });
            return (queue, queue.OpenReader(Math.Max(0, queue.NextSequence - Math.Max(0, lines)), OutOfRange.Clamp));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            queue?.Dispose();
            return null; // no segment yet, or no write access for a lease (another user's queue): the pread walk below
        }
    }

    /// <summary>tail -f through a read-only queue: prints what is visible, then waits for the writer's publishes.</summary>
    private static async Task<int> Follow(CliIo io, QueueReader reader, RecordFormat format, CancellationToken ct)
    {
        while (true)
        {
            PrintVisible(io, reader, format);
            io.Data.Flush();
            if (!await reader.WaitToReadAsync(ct).ConfigureAwait(false)) return ExitCodes.Ok;
        }
    }

    private static void PrintVisible(CliIo io, QueueReader reader, RecordFormat format)
    {
        while (reader.TryRead(out ReadOnlySpan<byte> payload))
        {
            (string file, int offset) = reader.LastRecordPosition(payload.Length);
            RecordPrinter.Print(io.Data, new InspectedRecord(reader.NextSequence - 1, file, offset, aborted: false, payload), format);
        }
    }
}
