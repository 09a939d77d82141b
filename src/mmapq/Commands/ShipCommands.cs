using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using MmapQueues.Shipping;
using Spectre.Console;

namespace MmapQueues.Cli.Commands;

/// <summary>
/// <c>mmapq export DIR --to HOST:PORT</c> and <c>mmapq receive DIR --port PORT</c>: ship a queue to a peer
/// over TCP (sendfile, or TLS), and receive it into a byte-identical replica.
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
        var shared = new ShipOptions();
        var command = new Command("export", "Ship the queue to a peer running 'mmapq receive' (sendfile, resumes where the replica's durable copy ends). Takes the queue's writer lock, or, when another process writes the queue, runs beside it read-only and ships what that writer made durable.")
            { directory, to, from, follow, consumer };
        shared.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            if (!IPEndPoint.TryParse(parse.GetValue(to)!, out IPEndPoint? peer) || peer.Port == 0)
                return Task.FromResult(Failed(io, $"--to must be HOST:PORT with an IP address, found '{parse.GetValue(to)}'"));
            (ShippingAuthentication? a, string? error) = shared.Resolve(parse, peer.Address);
            if (error is not null) return Task.FromResult(Failed(io, error));
            var options = new ExportOptions { Follow = parse.GetValue(follow), ConsumerName = parse.GetValue(consumer), Authentication = a };
            (options.HandshakeTimeout, options.IdleTimeout, options.KeepAliveTime, error) = shared.Timeouts(parse, options.HandshakeTimeout, options.IdleTimeout, options.KeepAliveTime);
            if (error is not null) return Task.FromResult(Failed(io, error));
            return RunExport(io, parse.GetValue(directory)!, peer, parse.GetValue(from), options, ct);
        });
        return command;
    }

    public static Command Receive(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var port = new Option<int>("--port") { Description = "TCP port to listen on.", Required = true };
        var bind = new Option<string>("--bind") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var sourceId = new Option<Guid?>("--source-id") { Description = "Accept only this source queue id (default: adopt the first sender's, then keep it)." };
        var maxSegment = new Option<long>("--max-segment-size") { Description = "Largest segment size (bytes) a new replica adopts.", DefaultValueFactory = _ => 64L << 20 };
        var maxSize = new Option<long>("--max-size") { Description = "Most bytes of segment files the replica keeps; a sender that would pass it is refused.", DefaultValueFactory = _ => 16L << 30 };
        var once = new Option<bool>("--once") { Description = "Exit after the first session that ends cleanly (default: serve until Ctrl+C)." };
        var shared = new ShipOptions();
        var command = new Command("receive", "Receive a queue shipped by 'mmapq export' into DIR. Serves connections concurrently, one session at a time; a broken connection is resumed by the next one.")
            { directory, port, bind, sourceId, maxSegment, maxSize, once };
        shared.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            if (!IPAddress.TryParse(parse.GetValue(bind), out IPAddress? address))
                return Task.FromResult(Failed(io, $"--bind must be an IP address, found '{parse.GetValue(bind)}'"));
            (ShippingAuthentication? a, string? error) = shared.Resolve(parse, address);
            if (error is not null) return Task.FromResult(Failed(io, error));
            var options = new ReceiverOptions
            {
                Authentication = a,
                SourceQueueId = parse.GetValue(sourceId),
                MaxSegmentSizeBytes = parse.GetValue(maxSegment),
                QueueOptions = new MmapQueueOptions { MaxQueueSizeBytes = parse.GetValue(maxSize), FullPolicy = QueueFullPolicy.Reject },
            };
            (options.HandshakeTimeout, options.IdleTimeout, options.KeepAliveTime, error) = shared.Timeouts(parse, options.HandshakeTimeout, options.IdleTimeout, options.KeepAliveTime);
            if (error is not null) return Task.FromResult(Failed(io, error));
            return RunReceive(io, parse.GetValue(directory)!, new IPEndPoint(address, parse.GetValue(port)), options, parse.GetValue(once), ct);
        });
        return command;
    }

    private static int Failed(CliIo io, string message)
    {
        io.Fail(message);
        return ExitCodes.CannotOpen;
    }

    private static async Task<int> RunExport(CliIo io, string directory, IPEndPoint peer, long from, ExportOptions options, CancellationToken ct)
    {
        if (!File.Exists(Path.Combine(directory, "queue.meta")))
            return Failed(io, $"{Path.GetFullPath(directory)} is not a queue directory (no queue.meta)");
        using MmapQueue queue = OpenForExport(io, directory);
        using var socket = new Socket(peer.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(peer, ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            return Failed(io, $"cannot connect to {peer}: {e.Message}");
        }
        long next = 0;
        try
        {
            await io.Console.Progress().AutoClear(false).StartAsync(async ctx =>
            {
                var bar = ctx.AddTask($"shipping {Markup.Escape(Path.GetFileName(Path.GetFullPath(directory)))} to {peer}", maxValue: Math.Max(1, queue.NextSequence - from));
                options.Progress = new SyncProgress<ShippingProgress>(p =>
                {
                    bar.MaxValue = Math.Max(bar.MaxValue, queue.NextSequence - from);
                    bar.Value = Math.Max(0, p.DurableSequence - from);
                    bar.Description = $"shipped {p.Bytes / 1e6:F1} MB, durable on the peer below {p.DurableSequence:N0}";
                });
                next = await new QueueExporter(queue, options).ExportAsync(socket, from, ct).ConfigureAwait(false);
                bar.Value = bar.MaxValue;
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException or ArgumentOutOfRangeException)
        {
            io.Fail(e.Message); // Fail escapes what it prints (an out-of-range --from included)
            return e is ShippingProtocolException ? ExitCodes.Corrupt : ExitCodes.CannotOpen;
        }
        io.Data.WriteLine($"exported: the peer holds every record below sequence {next} durably");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// The queue for writing when no process holds it; read-only beside the process that does (the sidecar case): then
    /// only what that writer made durable is shipped, and the session follows its flushes.
    /// </summary>
    private static MmapQueue OpenForExport(CliIo io, string directory)
    {
        try
        {
            return new MmapQueue(directory, new MmapQueueOptions { FlushMode = FlushMode.Async });
        }
        catch (IOException held) when (Storage.QueueDirectory.IsHeldByAnotherWriter(held))
        {
            io.Error.WriteLine($"note: {TerminalText.Escape(held.Message.Split(';')[0])}: exporting read-only beside it (the records it has made durable)");
            return new MmapQueue(directory, new MmapQueueOptions { ReadOnly = true });
        }
    }

    private static async Task<int> RunReceive(CliIo io, string directory, IPEndPoint endpoint, ReceiverOptions options, bool once, CancellationToken ct)
    {
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
        }
        catch (SocketException e)
        {
            return Failed(io, $"cannot listen on {endpoint}: {e.Message}");
        }
        listener.Listen(16);
        var receiver = new QueueReceiver(directory, options);
        io.Data.WriteLine($"listening on {listener.LocalEndPoint}, receiving into {TerminalText.Escape(receiver.Path)}");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            await receiver.ServeAsync(listener, s =>
            {
                if (s.Error is null)
                {
                    io.Data.WriteLine($"received from {s.Peer}: every record below sequence {s.NextSequence} is durable in the replica");
                    if (once) stop.Cancel();
                }
                else
                {
                    // The replica keeps what it acknowledged; the next connection resumes there.
                    io.Error.WriteLine($"session from {s.Peer} ended: {TerminalText.Escape(s.Error.Message)}");
                }
            }, progress: null, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C, or --once after a clean session: how the command is meant to stop.
        }
        return ExitCodes.Ok;
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (Progress&lt;T&gt; posts to the pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
