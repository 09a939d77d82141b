using System.Runtime.InteropServices;
using MmapQueues.Cli;
using Spectre.Console;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // stop tail -f and long verifies cleanly instead of killing the process
    cancel.Cancel();
};
// SIGTERM, as a service manager or container runtime stops a sidecar (and the one stop signal a process started
// in the background of a script cannot have ignored): the same clean stop as Ctrl+C.
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancel.Cancel();
});
var io = new CliIo(AnsiConsole.Console, Console.Out, Console.Error);
return await MmapqCli.RunAsync(args, io, cancel.Token);
