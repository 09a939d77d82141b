using MmapQueues.Cli;
using Spectre.Console;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // stop tail -f and long verifies cleanly instead of killing the process
    cancel.Cancel();
};
var io = new CliIo(AnsiConsole.Console, Console.Out, Console.Error);
return await MmapqCli.RunAsync(args, io, cancel.Token);
