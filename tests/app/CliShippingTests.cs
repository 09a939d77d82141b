using System.Net;
using System.Net.Sockets;
using System.Text;
using MmapQueues.Cli;
using Spectre.Console;

namespace MmapQueues.Tests.App;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
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
        (string source, string replica, TempDir dir) = await ShipWithCli([], []);
        using (dir) MmapQueues.Tests.Shipping.Loopback.AssertSameSegments(source, replica);
    }

    [Fact]
    public async Task ExportAndReceiveOverMutualTlsFromPemFiles()
    {
        using var pki = new MmapQueues.Tests.Shipping.TestPki();
        using var keys = new TempDir();
        (string cert, string key, string ca) = pki.WritePem(keys.Path, "source");
        (string rcert, string rkey, _) = pki.WritePem(keys.Path, "replica");
        (string source, string replica, TempDir dir) = await ShipWithCli(["--cert", cert, "--key", key, "--ca", ca], ["--cert", rcert, "--key", rkey, "--ca", ca]);
        using (dir) MmapQueues.Tests.Shipping.Loopback.AssertSameSegments(source, replica);
    }

    [Fact]
    public async Task ExportAndReceiveWithASharedSecretFile()
    {
        using var keys = new TempDir();
        string secret = Path.Combine(keys.Path, "secret");
        File.WriteAllText(secret, "a shared secret of more than sixteen bytes\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        (string source, string replica, TempDir dir) = await ShipWithCli(["--secret-file", secret], ["--secret-file", secret]);
        using (dir) MmapQueues.Tests.Shipping.Loopback.AssertSameSegments(source, replica);
    }

    [Fact]
    public async Task ASecretFileOthersCanReadIsRefused()
    {
        using var dir = new TempDir();
        string secret = Path.Combine(dir.Path, "secret");
        File.WriteAllText(secret, "a shared secret of more than sixteen bytes\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var error = new StringWriter();
        Assert.Equal(2, await MmapqCli.RunAsync(["receive", dir.Sub("replica"), "--port", "0", "--secret-file", secret], Io(new StringWriter(), error)));
        Assert.Contains($"the secret file {secret} may be read or written by others (mode 0644); expected the owner only", error.ToString());
    }

    [Fact]
    public async Task PlainTcpWithANonLoopbackAddressIsRefusedWithoutInsecure()
    {
        using var dir = new TempDir();
        var error = new StringWriter();
        Assert.Equal(2, await MmapqCli.RunAsync(["receive", dir.Sub("replica"), "--port", "0", "--bind", "0.0.0.0"], Io(new StringWriter(), error)));
        Assert.Contains("0.0.0.0 is not a loopback address and no authentication was given", error.ToString());
        using (var q = new MmapQueue(dir.Sub("source"))) q.Enqueue("x"u8);
        error = new StringWriter();
        Assert.Equal(2, await MmapqCli.RunAsync(["export", dir.Sub("source"), "--to", "192.0.2.1:9"], Io(new StringWriter(), error)));
        Assert.Contains("192.0.2.1 is not a loopback address and no authentication was given", error.ToString());
    }

    [Fact]
    public async Task ExportAsANamedConsumerLetsRetentionFreeWhatTheReplicaHolds()
    {
        (string source, string replica, TempDir dir) = await ShipWithCli(["--consumer", "replica"], []);
        using (dir)
        {
            using var q = new MmapQueue(source);
            Assert.Equal(5000, q.Consumers["replica"]);
            Assert.True(q.FirstSequence > 0, "retention freed nothing on the source");
            using var rq = new MmapQueue(replica);
            Assert.Equal((0L, 5000L), (rq.FirstSequence, rq.NextSequence));
        }
    }

    /// <summary>Fills a queue, runs 'mmapq receive' (with <paramref name="receiveArgs"/>) and 'mmapq export' (with <paramref name="exportArgs"/>) over loopback.</summary>
    private static async Task<(string Source, string Replica, TempDir Dir)> ShipWithCli(string[] exportArgs, string[] receiveArgs)
    {
        var dir = new TempDir(); // the caller disposes it
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 * 1024, FlushMode = FlushMode.Async }))
            for (int i = 0; i < 5000; i++) q.Enqueue(Encoding.ASCII.GetBytes($"event {i} {new string('x', i % 90)}"));
        await ReceiveAndExport(source, replica, exportArgs, receiveArgs, 5000);
        return (source, replica, dir);
    }

    /// <summary>Runs 'mmapq receive --once' and 'mmapq export' over loopback; both must report <paramref name="expected"/>. Returns export's stderr.</summary>
    private static async Task<string> ReceiveAndExport(string source, string replica, string[] exportArgs, string[] receiveArgs, long expected)
    {
        int port = FreePort();
        var receiveData = new SharedWriter(); // polled here while receive writes to it
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Task<int> receive = MmapqCli.RunAsync(["receive", replica, "--port", port.ToString(), "--once", .. receiveArgs], Io(receiveData, new StringWriter()), cts.Token);
        while (!receiveData.ToString().Contains("listening on", StringComparison.Ordinal))
        {
            Assert.False(receive.IsCompleted, "receive ended before listening");
            await Task.Delay(20, cts.Token);
        }

        var exportData = new StringWriter();
        var exportError = new StringWriter();
        int exported = await MmapqCli.RunAsync(["export", source, "--to", $"127.0.0.1:{port}", .. exportArgs], Io(exportData, exportError), cts.Token);
        Assert.True(exported == 0, exportError.ToString());
        Assert.Contains($"the peer holds every record below sequence {expected} durably", exportData.ToString());
        Assert.Equal(0, await receive);
        Assert.Contains($"every record below sequence {expected} is durable in the replica", receiveData.ToString());
        return exportError.ToString();
    }

    [Fact]
    public async Task ExportBesideAWriterThatHoldsTheQueueOpensItReadOnlyAndShipsWhatTheWriterMadeDurable()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using var writer = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 * 1024, FlushMode = FlushMode.Async });
        for (int i = 0; i < 3000; i++) writer.Enqueue(Encoding.ASCII.GetBytes($"event {i} {new string('x', i % 90)}"));
        writer.Flush(); // the sealed segments' header watermarks are exact; the active segment's lags (moves every 1 MiB)
        long durable = writer.Segments[^1].BaseSequence;
        Assert.InRange(durable, 1, 2999);
        string error = await ReceiveAndExport(source, replica, ["--consumer", "replica"], [], durable);
        Assert.Contains("is already open for writing", error);
        Assert.Contains("exporting read-only beside it", error);
        Assert.Equal(durable, writer.Consumers["replica"]); // committed by the exporter's process through the shared cursors file
    }

    [Fact]
    public async Task APeersErrorTextReachesTheTerminalEscaped()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Sub("source"))) q.Enqueue("x"u8);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        Task fake = Task.Run(() =>
        {
            using Socket peer = listener.Accept();
            var hello = new byte[MmapQueues.Shipping.WireProtocol.HelloSize];
            for (int at = 0; at < hello.Length;) at += peer.Receive(hello, at, hello.Length - at, SocketFlags.None);
            byte[] text = Encoding.ASCII.GetBytes("\u001b]0;pwned\u0007\u001b[2J evil");
            var header = new byte[MmapQueues.Shipping.WireProtocol.HeaderSize];
            MmapQueues.Shipping.WireProtocol.WriteHeader(header, MmapQueues.Shipping.WireProtocol.Kind.Error, text.Length, 0, 0);
            peer.Send([.. header, .. text]);
            peer.Receive(new byte[64]); // until the exporter closes
        });
        var error = new StringWriter();
        int code = await MmapqCli.RunAsync(["export", dir.Sub("source"), "--to", $"127.0.0.1:{((IPEndPoint)listener.LocalEndPoint!).Port}"],
            Io(new StringWriter(), error));
        await fake.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, code);
        string shown = error.ToString();
        Assert.DoesNotContain('\u001b', shown);
        Assert.DoesNotContain('\u0007', shown);
        // The library reduced the peer text to printable ASCII (\x1B); the CLI prints a literal backslash doubled.
        Assert.Contains(@"refused the session: \\x1B]0;pwned\\x07\\x1B[2J evil", shown);
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
