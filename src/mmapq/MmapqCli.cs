using System.CommandLine;
using MmapQueues.Cli.Commands;
using MmapQueues.Storage;

namespace MmapQueues.Cli;

/// <summary>The <c>mmapq</c> command line: builds the commands and runs one, in process (tests call this too).</summary>
internal static class MmapqCli
{
    public static async Task<int> RunAsync(string[] args, CliIo io, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("mmapq: look inside MmapQueue directories, ship them to a peer, and run the demo.")
        {
            InfoCommand.Create(io),
            VerifyCommand.Create(io),
            DumpCommand.Create(io),
            TailCommand.Create(io),
            DemoCommand.Create(io),
            ShipCommands.Export(io),
            ShipCommands.Receive(io),
            ForwardCommand.Create(io),
        };
        ParseResult parsed = root.Parse(args);
        var config = new InvocationConfiguration { Output = io.Data, Error = io.Error };
        return await parsed.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The directory argument every inspection command takes.</summary>
    public static Argument<string> DirectoryArgument() => new("directory") { Description = "The queue directory." };

    /// <summary>
    /// Opens the queue read-only for a command and runs it, turning the errors an operator can cause (missing
    /// or foreign directory, a corrupt queue.meta) into one clear line and an exit code instead of a stack trace.
    /// </summary>
    public static async Task<int> WithQueue(CliIo io, string directory, Func<QueueInspector, Task<int>> run)
    {
        QueueInspector inspector;
        try
        {
            inspector = QueueInspector.Open(directory);
        }
        catch (QueueCorruptedException e)
        {
            io.Fail(e.Message);
            return ExitCodes.Corrupt;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException) // DirectoryNotFoundException is an IOException
        {
            io.Fail(e.Message);
            return ExitCodes.CannotOpen;
        }
        try
        {
            return await run(inspector).ConfigureAwait(false);
        }
        catch (QueueCorruptedException e)
        {
            io.Fail(e.Message);
            return ExitCodes.Corrupt;
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Ok; // Ctrl+C ends tail -f; it is how the command is meant to stop
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A file vanished or became unreadable in a way the command did not step around: one line, no trace.
            io.Fail(e.Message);
            return ExitCodes.CannotOpen;
        }
    }
}
