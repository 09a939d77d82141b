using System.Net;
using System.Net.Sockets;
using System.Text;
using MmapQueues.Cli;
using Spectre.Console;

namespace MmapQueues.Tests.App;

public class CliShippingTests
{
    private static CliIo Io(TextWriter data, TextWriter error) =>
        new(AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(new StringWriter()),
        }), TextWriter.Synchronized(data), TextWriter.Synchronized(error));

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    [Fact]
    public async Task ExportAndReceiveCommandsShipAQueueOverLoopbackToAByteIdenticalReplica()
    {
        (string source, string replica, TempDir dir) = await ShipWithCli([]);
        using (dir)
        {
            string[] segments = Directory.GetFiles(source, "*.seg").Select(Path.GetFileName).Order().ToArray()!;
            Assert.Equal(segments, Directory.GetFiles(replica, "*.seg").Select(Path.GetFileName).Order().ToArray());
            foreach (string s in segments)
                Assert.True(File.ReadAllBytes(Path.Combine(source, s)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(replica, s))), $"{s} differs");
        }
    }

    [Fact]
    public async Task ExportAsANamedConsumerLetsRetentionFreeWhatTheReplicaHolds()
    {
        (string source, string replica, TempDir dir) = await ShipWithCli(["--consumer", "replica"]);
        using (dir)
        {
            using var q = new MmapQueue(source);
            Assert.Equal(5000, q.Consumers["replica"]);
            Assert.True(q.FirstSequence > 0, "retention freed nothing on the source");
            using var rq = new MmapQueue(replica);
            Assert.Equal((0L, 5000L), (rq.FirstSequence, rq.NextSequence));
        }
    }

    /// <summary>Fills a queue, runs 'mmapq receive' and 'mmapq export' (with <paramref name="exportArgs"/>) over loopback.</summary>
    private static async Task<(string Source, string Replica, TempDir Dir)> ShipWithCli(string[] exportArgs)
    {
        var dir = new TempDir(); // the caller disposes it
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 * 1024, FlushMode = FlushMode.Async }))
            for (int i = 0; i < 5000; i++) q.Enqueue(Encoding.ASCII.GetBytes($"event {i} {new string('x', i % 90)}"));

        int port = FreePort();
        var receiveData = new SharedWriter(); // polled here while receive writes to it
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Task<int> receive = MmapqCli.RunAsync(["receive", replica, "--port", port.ToString(), "--once"], Io(receiveData, new StringWriter()), cts.Token);
        while (!receiveData.ToString().Contains("listening on", StringComparison.Ordinal))
        {
            Assert.False(receive.IsCompleted, "receive ended before listening");
            await Task.Delay(20, cts.Token);
        }

        var exportData = new StringWriter();
        var exportError = new StringWriter();
        int exported = await MmapqCli.RunAsync(["export", source, "--to", $"127.0.0.1:{port}", .. exportArgs], Io(exportData, exportError), cts.Token);
        Assert.True(exported == 0, exportError.ToString());
        Assert.Contains("the peer holds every record below sequence 5000 durably", exportData.ToString());
        Assert.Equal(0, await receive);
        Assert.Contains("every record below sequence 5000 is durable in the replica", receiveData.ToString());
        return (source, replica, dir);
    }

    [Fact]
    public async Task ExportToAMissingQueueOrABadAddressFailsWithAClearError()
    {
        using var dir = new TempDir();
        var error = new StringWriter();
        Assert.Equal(2, await MmapqCli.RunAsync(["export", dir.Sub("nope"), "--to", "127.0.0.1:1"], Io(new StringWriter(), error)));
        Assert.Contains("is not a queue directory (no queue.meta)", error.ToString());
        error = new StringWriter();
        Assert.Equal(2, await MmapqCli.RunAsync(["export", dir.Path, "--to", "localhost"], Io(new StringWriter(), error)));
        Assert.Contains("--to must be HOST:PORT with an IP address, found 'localhost'", error.ToString());
    }
}
