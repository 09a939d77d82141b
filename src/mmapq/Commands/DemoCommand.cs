using System.CommandLine;

namespace MmapQueues.Cli.Commands;

/// <summary><c>mmapq demo [DIR] [--count N]</c>: the README's first command.</summary>
internal static class DemoCommand
{
    public static Command Create(CliIo io)
    {
        var directory = new Argument<string>("directory") { Description = "Queue directory (created if missing).", DefaultValueFactory = _ => "demo-queue" };
        var count = new Option<int>("--count") { Description = "How many events to append.", DefaultValueFactory = _ => 4_000_000 };
        var command = new Command("demo", "Append four million small events (256 MiB), read them back, print rates and what is durable.") { directory, count };
        command.SetAction(parse => Demo.Run(io.Data, parse.GetValue(directory)!, parse.GetValue(count)));
        return command;
    }
}
