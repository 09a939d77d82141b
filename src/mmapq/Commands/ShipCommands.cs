using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Spectre.Console;

namespace MmapQueues.Cli.Commands;

/// <summary>
/// <c>mmapq export DIR --to HOST:PORT</c> and <c>mmapq receive DIR --port PORT</c>: ship a queue to a peer
/// over TCP with sendfile, and receive it into a byte-identical replica; both show a progress bar.
/// </summary>
internal static class ShipCommands
{
    public static Command Export(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var to = new Option<string>("--to") { Description = "The receiving peer, HOST:PORT.", Required = true };
        var from = new Option<long>("--from") { Description = "First sequence to send if the replica is new.", DefaultValueFactory = _ => 0 };
        var follow = new Option<bool>("--follow") { Description = "Keep shipping new records until Ctrl+C." };
        var consumer = new Option<string?>("--consumer") { Description = "Ship as this named consumer: it is committed at every acknowledgement, so retention frees what the replica holds durably." };
        var command = new Command("export", "Ship the queue to a peer running 'mmapq receive' (sendfile, resumes where the replica's durable copy ends). Takes the queue's writer lock.")
            { directory, to, from, follow, consumer };
        command.SetAction((parse, ct) => RunExport(io, parse.GetValue(directory)!, parse.GetValue(to)!, parse.GetValue(from), parse.GetValue(follow),
            parse.GetValue(consumer), ct));
        return command;
    }

    public static Command Receive(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var port = new Option<int>("--port") { Description = "TCP port to listen on.", Required = true };
        var bind = new Option<string>("--bind") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var command = new Command("receive", "Receive a queue shipped by 'mmapq export' into DIR; a broken connection is resumed by the next one.")
            { directory, port, bind };
        command.SetAction((parse, ct) => RunReceive(io, parse.GetValue(directory)!, parse.GetValue(bind)!, parse.GetValue(port), ct));
        return command;
    }

    private static async Task<int> RunExport(CliIo io, string directory, string to, long from, bool follow, string? consumer, CancellationToken ct)
    {
        if (!IPEndPoint.TryParse(to, out IPEndPoint? peer) || peer.Port == 0)
        {
            io.Fail($"--to must be HOST:PORT with an IP address, found '{to}'");
            return ExitCodes.CannotOpen;
        }
        if (!File.Exists(Path.Combine(directory, "queue.meta")))
        {
            io.Fail($"{Path.GetFullPath(directory)} is not a queue directory (no queue.meta)");
            return ExitCodes.CannotOpen;
        }
        using var queue = new MmapQueue(directory, new MmapQueueOptions { FlushMode = FlushMode.Async });
        using var socket = new Socket(peer.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(peer, ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            io.Fail($"cannot connect to {peer}: {e.Message}");
            return ExitCodes.CannotOpen;
        }
        long next = 0;
        await io.Console.Progress().AutoClear(false).StartAsync(async ctx =>
        {
            var bar = ctx.AddTask($"shipping {Path.GetFileName(Path.GetFullPath(directory))} to {peer}", maxValue: Math.Max(1, queue.NextSequence - from));
            var progress = new SyncProgress<ShippingProgress>(p =>
            {
                bar.MaxValue = Math.Max(bar.MaxValue, queue.NextSequence - from);
                bar.Value = Math.Max(0, p.DurableSequence - from);
                bar.Description = $"shipped {p.Bytes / 1e6:F1} MB, durable on the peer below {p.DurableSequence:N0}";
            });
            next = await queue.ExportToAsync(socket, from, new ExportOptions { Follow = follow, Progress = progress, ConsumerName = consumer }, ct).ConfigureAwait(false);
            bar.Value = bar.MaxValue;
        }).ConfigureAwait(false);
        io.Data.WriteLine($"exported: the peer holds every record below sequence {next} durably");
        return ExitCodes.Ok;
    }

    private static async Task<int> RunReceive(CliIo io, string directory, string bind, int port, CancellationToken ct)
    {
        if (!IPAddress.TryParse(bind, out IPAddress? address))
        {
            io.Fail($"--bind must be an IP address, found '{bind}'");
            return ExitCodes.CannotOpen;
        }
        using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, port));
        listener.Listen(1);
        io.Data.WriteLine($"listening on {listener.LocalEndPoint}, receiving into {Path.GetFullPath(directory)}");
        while (true)
        {
            using Socket peer = await listener.AcceptAsync(ct).ConfigureAwait(false);
            try
            {
                long next = 0;
                await io.Console.Progress().AutoClear(false).StartAsync(async ctx =>
                {
                    var bar = ctx.AddTask($"receiving from {peer.RemoteEndPoint}", maxValue: double.MaxValue);
                    bar.IsIndeterminate = true;
                    var progress = new SyncProgress<ShippingProgress>(p => bar.Description = $"received {p.Bytes / 1e6:F1} MB, durable below {p.DurableSequence:N0}");
                    next = await MmapQueue.ReceiveFromAsync(directory, peer, null, progress, ct).ConfigureAwait(false);
                    bar.IsIndeterminate = false;
                    bar.Value = bar.MaxValue;
                }).ConfigureAwait(false);
                io.Data.WriteLine($"received: every record below sequence {next} is durable in the replica");
                return ExitCodes.Ok;
            }
            catch (ShippingProtocolException e)
            {
                io.Fail($"refused the stream: {e.Message}");
                return ExitCodes.Corrupt;
            }
            catch (IOException e)
            {
                // The connection broke: the replica keeps what it acknowledged; the next connection resumes there.
                io.Error.WriteLine($"connection lost ({e.Message}); waiting for the sender to reconnect and resume");
            }
        }
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (Progress&lt;T&gt; posts to the pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
