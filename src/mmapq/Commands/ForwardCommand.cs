using System.CommandLine;
using MmapQueues.Nats;
using NATS.Client.Core;
using Spectre.Console;

namespace MmapQueues.Cli.Commands;

/// <summary>
/// <c>mmapq forward DIR --nats URL --stream NAME --subject SUBJECT [--consumer NAME] [--follow]</c>: forwards
/// the queue into a NATS JetStream stream, exactly once, from the named consumer's position, with a progress bar.
/// </summary>
internal static class ForwardCommand
{
    /// <summary>Exit code for a failure retrying cannot fix (a record too large, a stream that cannot be created).</summary>
    public const int Failed = 3;

    public static Command Create(CliIo io)
    {
        var directory = MmapqCli.DirectoryArgument();
        var url = new Option<string>("--nats") { Description = "The NATS server URL(s), comma-separated (nats://host:4222, tls://host:4222).", Required = true };
        var stream = new Option<string>("--stream") { Description = "The JetStream stream; created when missing.", Required = true };
        var subject = new Option<string>("--subject") { Description = "The subject every message is published to.", Required = true };
        var consumer = new Option<string>("--consumer") { Description = "The queue's named consumer to read and commit.", DefaultValueFactory = _ => NatsForwarderOptions.DefaultConsumerName };
        var follow = new Option<bool>("--follow") { Description = "Keep forwarding new records until Ctrl+C (default: exit 0 once caught up)." };
        var batch = new Option<int>("--batch-bytes") { Description = "Pack records into messages of up to this many bytes (0: one message per record).", DefaultValueFactory = _ => 0 };
        var window = new Option<int>("--window") { Description = "Publishes in flight.", DefaultValueFactory = _ => 256 };
        var replicas = new Option<int>("--replicas") { Description = "Replicas of a stream this command creates (1, 3 or 5).", DefaultValueFactory = _ => 1 };
        var dupWindow = new Option<TimeSpan?>("--duplicate-window") { Description = "Duplicate window of a stream this command creates (hh:mm:ss; default: the server's, 2 minutes)." };
        var creds = new Option<string?>("--creds") { Description = "A NATS .creds file (JWT and NKey seed)." };
        var user = new Option<string?>("--user") { Description = "User name." };
        var password = new Option<string?>("--password") { Description = "Password (with --user)." };
        var token = new Option<string?>("--token") { Description = "Authentication token." };
        var tlsCa = new Option<string?>("--tls-ca") { Description = "CA certificate (PEM) to verify the server with; turns TLS on." };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "Client certificate (PEM) for mutual TLS." };
        var tlsKey = new Option<string?>("--tls-key") { Description = "Client key (PEM) for mutual TLS." };
        var command = new Command("forward", "Forward the queue into a NATS JetStream stream, exactly once (message ids from queue id and sequence; the consumer commits only acknowledged records). Takes the queue's writer lock.")
            { directory, url, stream, subject, consumer, follow, batch, window, replicas, dupWindow, creds, user, password, token, tlsCa, tlsCert, tlsKey };
        command.SetAction((parse, ct) =>
        {
            var auth = NatsAuthOpts.Default with
            {
                CredsFile = parse.GetValue(creds), Username = parse.GetValue(user), Password = parse.GetValue(password), Token = parse.GetValue(token),
            };
            var tls = NatsTlsOpts.Default;
            if (parse.GetValue(tlsCa) is { } ca) tls = tls with { CaFile = ca, Mode = TlsMode.Require };
            if (parse.GetValue(tlsCert) is { } cert) tls = tls with { CertFile = cert, KeyFile = parse.GetValue(tlsKey), Mode = TlsMode.Require };
            var options = new NatsForwarderOptions
            {
                NatsOpts = NatsOpts.Default with { Url = parse.GetValue(url)!, Name = "mmapq-forward", AuthOpts = auth, TlsOpts = tls },
                Stream = parse.GetValue(stream)!,
                Subject = parse.GetValue(subject)!,
                ConsumerName = parse.GetValue(consumer)!,
                Follow = parse.GetValue(follow),
                BatchMaxBytes = parse.GetValue(batch),
                MaxInFlight = parse.GetValue(window),
                StreamReplicas = parse.GetValue(replicas),
                DuplicateWindow = parse.GetValue(dupWindow),
            };
            return Run(io, parse.GetValue(directory)!, options, ct);
        });
        return command;
    }

    private static async Task<int> Run(CliIo io, string directory, NatsForwarderOptions options, CancellationToken ct)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            io.Fail(e.Message);
            return ExitCodes.CannotOpen;
        }
        if (!File.Exists(Path.Combine(directory, "queue.meta")))
        {
            io.Fail($"{Path.GetFullPath(directory)} is not a queue directory (no queue.meta)");
            return ExitCodes.CannotOpen;
        }
        using var queue = new MmapQueue(directory, new MmapQueueOptions { FlushMode = FlushMode.Async });
        long start = queue.Consumers.TryGetValue(options.ConsumerName, out long committed) ? committed : queue.FirstSequence;
        long next = 0;
        try
        {
            await io.Console.Progress().AutoClear(false).StartAsync(async ctx =>
            {
                ProgressTask bar = ctx.AddTask($"forwarding to {options.Stream} ({options.Subject})", maxValue: Math.Max(1, queue.NextSequence - start));
                options.Progress = new ForwardBar(bar, start);
                await using var forwarder = new NatsForwarder(queue, options);
                next = await forwarder.RunAsync(ct).ConfigureAwait(false);
                bar.Value = bar.MaxValue;
            }).ConfigureAwait(false);
        }
        catch (NatsForwardException e)
        {
            io.Fail(e.Message);
            return Failed;
        }
        io.Data.WriteLine($"forwarded: stream {options.Stream} holds every record below sequence {next}; consumer '{options.ConsumerName}' committed there");
        return ExitCodes.Ok;
    }

    /// <summary>Moves the bar as acks arrive (reported on the forwarder's flow, not posted to the pool).</summary>
    private sealed class ForwardBar(ProgressTask bar, long start) : IProgress<NatsForwardProgress>
    {
        public void Report(NatsForwardProgress p)
        {
            bar.MaxValue = Math.Max(1, p.QueueNext - start);
            bar.Value = Math.Max(0, p.Acknowledged - start);
            bar.Description = $"in the stream below {p.Acknowledged:N0} of {p.QueueNext:N0}, {p.Bytes / 1e6:F1} MB" + (p.Retries > 0 ? $", {p.Retries} retries" : "");
        }
    }
}
