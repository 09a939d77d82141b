using Spectre.Console;

namespace MmapQueues.Cli;

/// <summary>
/// Where a command writes: <see cref="Console"/> for tables and progress bars, <see cref="Data"/> for records
/// and findings (raw lines, never wrapped to the terminal width, so they can be piped and parsed), and
/// <see cref="Error"/> for errors. Tests pass writers they read back.
/// </summary>
internal sealed record CliIo(IAnsiConsole Console, TextWriter Data, TextWriter Error)
{
    /// <summary>Prints an error; the message may quote a file or a peer, so it is escaped (<see cref="TerminalText"/>).</summary>
    public void Fail(string message) => Error.WriteLine($"error: {TerminalText.Escape(message)}");
}

/// <summary>Process exit codes of mmapq.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>verify found corruption, or a record could not be read.</summary>
    public const int Corrupt = 1;
    /// <summary>The directory is missing or not a queue, the arguments are wrong, or a file could not be read.</summary>
    public const int CannotOpen = 2;
}
