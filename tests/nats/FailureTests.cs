using System.Diagnostics;
using System.Reflection;
using MmapQueues.Nats;
using MmapQueues.Tests.Nats.Harness;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Nats;

public class FailureTests(ITestOutputHelper output)
{
    private static NatsForwarderOptions Options(string url, string stream) => new()
    {
        NatsOpts = NatsOpts.Default with { Url = url, ReconnectWaitMin = TimeSpan.FromMilliseconds(100), ReconnectWaitMax = TimeSpan.FromMilliseconds(500) },
        Stream = stream,
        Subject = $"{stream}.records",
        AckTimeout = TimeSpan.FromSeconds(2),
        RetryMaxDelay = TimeSpan.FromSeconds(1),
    };

    [RequiresNatsServerFact]
    public Task ServerStoppedAndRestartedMidRunLosesNothing() => RestartServerMidRun(kill: false);

    /// <summary>SIGKILL: an R1 stream's acknowledged messages survive a server process kill (the page cache keeps them).</summary>
    [RequiresNatsServerFact]
    public Task ServerKilledAndRestartedMidRunLosesNothing() => RestartServerMidRun(kill: true);

    private async Task RestartServerMidRun(bool kill)
    {
        const int n = 100_000;
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        StreamCheck.Append(dir.Sub("q"), 0, n);
        using var q = new MmapQueue(dir.Sub("q"));
        var log = new ForwarderEvents();
        await using var forwarder = new NatsForwarder(q, Options(server.Url, "RESTART"), log);
        Task<long> run = forwarder.RunAsync();
        Assert.True(SpinWait.SpinUntil(() => forwarder.Acknowledged > n / 5, TimeSpan.FromSeconds(60)), "the forwarder made no progress");
        if (kill) server.Kill();
        else server.Stop();
        long atStop = forwarder.Acknowledged;
        Thread.Sleep(1500); // the backlog stays in the queue while the server is away
        Assert.True(forwarder.Acknowledged - atStop < 1000, "acks kept arriving from a stopped server");
        server.Start();
        Assert.Equal(n, await run.WaitAsync(TimeSpan.FromSeconds(90)));
        // Around the outage the client re-sends what it had buffered when the connection dropped, so records
        // there may be stored out of order; none is lost or stored twice.
        await StreamCheck.AssertHoldsExactly(server.Url, "RESTART", n, inOrder: false);
        Assert.Contains(log.Events, e => e.Id == 1063); // the retry was logged
        output.WriteLine(log.ToString());
    }

    [RequiresNatsServerFact]
    public async Task OneNodeOfAnR3ClusterKilledMidRunForwardingContinues()
    {
        const int n = 30_000;
        using var dir = new TempDir();
        using var cluster = new NatsCluster(dir.Sub("cluster"));
        StreamCheck.Append(dir.Sub("q"), 0, n);
        await CreateStreamWhenClusterIsReady(cluster.Nodes[0].Url, new StreamConfig("R3", ["R3.records"]) { NumReplicas = 3 });
        using var q = new MmapQueue(dir.Sub("q"));
        await using var forwarder = new NatsForwarder(q, Options(cluster.Urls, "R3"));
        Task<long> run = forwarder.RunAsync();
        Assert.True(SpinWait.SpinUntil(() => forwarder.Acknowledged > n / 4, TimeSpan.FromSeconds(60)), "the forwarder made no progress");
        cluster.Nodes[Random.Shared.Next(3)].Kill();
        Assert.Equal(n, await run.WaitAsync(TimeSpan.FromSeconds(120)));
        await StreamCheck.AssertHoldsExactly(cluster.Nodes.First(x => x.IsRunning).Url, "R3", n, inOrder: false);
    }

    [RequiresNatsServerTheory]
    [InlineData(0)]
    [InlineData(4096)]
    public async Task ARestartAfterTheDuplicateWindowDoesNotDuplicate(int batchBytes)
    {
        const int n = 20_000;
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        StreamCheck.Append(dir.Sub("q"), 0, n);
        NatsForwarderOptions options = Options(server.Url, "WINDOW");
        options.DuplicateWindow = TimeSpan.FromSeconds(1);
        options.BatchMaxBytes = batchBytes;
        var log = new ForwarderEvents();
        using (var q = new MmapQueue(dir.Sub("q")))
        {
            await using (var forwarder = new NatsForwarder(q, options)) Assert.Equal(n, await forwarder.RunAsync());
            // A commit lost to a crash: the consumer is back at n/2 while the stream holds all n records.
            using (QueueReader consumer = q.OpenReader(NatsForwarderOptions.DefaultConsumerName))
            {
                consumer.Seek(n - 3000);
                consumer.Commit();
            }
        }
        Thread.Sleep(1500); // past the duplicate window: the server no longer recognises the message ids
        using (var q = new MmapQueue(dir.Sub("q")))
        {
            await using var forwarder = new NatsForwarder(q, options, log);
            Assert.Equal(n, await forwarder.RunAsync());
            Assert.Equal(n, q.Consumers[NatsForwarderOptions.DefaultConsumerName]);
        }
        Assert.Contains(log.Events, e => e.Id == 1061 && e.Text.Contains($"[{n - 3000}, {n})")); // skipped, proven by the walk back
        await StreamCheck.AssertHoldsExactly(server.Url, "WINDOW", n);
    }

    /// <summary>
    /// An outage leaves the records around it out of order in the stream (the client sends its buffer after later
    /// publishes); a commit lost to a crash and a restart past the duplicate window must still not repeat them.
    /// </summary>
    [RequiresNatsServerFact]
    public async Task ARestartAfterTheWindowOverRecordsStoredOutOfOrderDoesNotDuplicate()
    {
        const int n = 40;
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        StreamCheck.Append(dir.Sub("q"), 0, n);
        NatsForwarderOptions options = Options(server.Url, "REORDER");
        Guid queueId;
        using (var q = new MmapQueue(dir.Sub("q"))) queueId = q.QueueId;
        await using (var nats = new NatsClient(server.Url))
        {
            INatsJSContext js = nats.CreateJetStreamContext();
            await js.CreateStreamAsync(new StreamConfig("REORDER", [options.Subject]) { DuplicateWindow = TimeSpan.FromSeconds(1) });
            // As an outage leaves them: 0-19, then 25-39, then 20-24.
            foreach (long i in Enumerable.Range(0, 20).Concat(Enumerable.Range(25, 15)).Concat(Enumerable.Range(20, 5)))
            {
                var headers = new NatsHeaders
                {
                    [NatsForwardHeaders.QueueId] = queueId.ToString("N"),
                    [NatsForwardHeaders.Sequence] = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                };
                PubAckResponse ack = await js.PublishAsync(options.Subject, StreamCheck.Payload(i), headers: headers, opts: new NatsJSPubOpts { MsgId = $"{queueId:N}:{i}" });
                ack.EnsureSuccess();
            }
        }
        using (var q = new MmapQueue(dir.Sub("q")))
        {
            // The forwarder's last commit before its crash: 20 (the acks of 25-39 and 20-24 came, the commit did not).
            using (QueueReader consumer = q.OpenReader(NatsForwarderOptions.DefaultConsumerName))
            {
                consumer.Seek(20);
                consumer.Commit();
            }
            Thread.Sleep(1500); // past the duplicate window
            await using var forwarder = new NatsForwarder(q, options);
            Assert.Equal(n, await forwarder.RunAsync());
        }
        await StreamCheck.AssertHoldsExactly(server.Url, "REORDER", n, inOrder: false);
    }

    /// <summary>
    /// The real <c>mmapq forward</c> process, SIGKILLed at random moments; new records arrive between cycles. The
    /// stream's duplicate window is 1 s, shorter than a cycle, so only the resume check can prevent repeats.
    /// CI runs MMAPQ_NATS_KILL_CYCLES (default 12) cycles; the full run is 50.
    /// </summary>
    [RequiresNatsServerFact]
    public async Task ForwarderProcessKilledAtRandomMomentsNeitherLosesNorDuplicates()
    {
        int cycles = StreamCheck.EnvInt("MMAPQ_NATS_KILL_CYCLES", 12);
        const int perCycle = 5_000;
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        string queue = dir.Sub("q");
        var random = new Random(Environment.TickCount);
        long total = 0;
        int killedMidRun = 0;
        await using var nats = new NatsClient(server.Url);
        INatsJSContext js = nats.CreateJetStreamContext();
        for (int cycle = 0; cycle < cycles; cycle++)
        {
            StreamCheck.Append(queue, total, perCycle);
            total += perCycle;
            long before = await StreamMessages(js, "KILL");
            using Process child = StartForward(queue, server.Url, "KILL");
            if (cycle % 2 == 0)
            {
                // Even cycles: killed once the stream holds a random part of what this run must forward, so
                // the kill lands mid-forwarding however fast the machine is.
                long killAt = before + 1 + random.NextInt64(Math.Max(1, total - before - 1));
                for (var sw = Stopwatch.StartNew(); !child.HasExited && sw.Elapsed < TimeSpan.FromSeconds(60); await Task.Delay(2))
                {
                    if (await StreamMessages(js, "KILL") < killAt) continue;
                    if (!child.HasExited)
                    {
                        child.Kill();
                        killedMidRun++;
                    }
                    break;
                }
            }
            else if (!child.WaitForExit(random.Next(150, 1200))) // odd cycles: at a random time, start-up included
            {
                child.Kill();
                killedMidRun++;
            }
            child.WaitForExit();
        }
        using (Process last = StartForward(queue, server.Url, "KILL"))
        {
            Assert.True(last.WaitForExit(TimeSpan.FromSeconds(120)), "the final forward did not finish");
            Assert.Equal(0, last.ExitCode);
        }
        Assert.True(killedMidRun >= cycles / 2, $"only {killedMidRun} of {cycles} kills hit a running forwarder");
        output.WriteLine($"{cycles} cycles, {killedMidRun} forwarders killed mid-run, {total} records");
        await StreamCheck.AssertHoldsExactly(server.Url, "KILL", total);
    }

    private static async Task<long> StreamMessages(INatsJSContext js, string stream)
    {
        try
        {
            return (long)(await js.GetStreamAsync(stream)).Info.State.Messages;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return 0; // the first forwarder has not created the stream yet
        }
    }

    private static Process StartForward(string queue, string url, string stream)
    {
        string dll = typeof(FailureTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "MmapqDll").Value!;
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { dll, "forward", queue, "--nats", url, "--stream", stream, "--subject", $"{stream}.records", "--duplicate-window", "00:00:01" })
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_TieredPGO"] = "0";
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start mmapq forward");
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static async Task CreateStreamWhenClusterIsReady(string url, StreamConfig config)
    {
        await using var nats = new NatsClient(url);
        var js = nats.CreateJetStreamContext();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await js.CreateStreamAsync(config);
                return;
            }
            catch (Exception e) when (sw.Elapsed < TimeSpan.FromSeconds(30) && e is NATS.Client.JetStream.NatsJSApiException or NatsException or TimeoutException)
            {
                await Task.Delay(200); // the cluster is still electing its meta leader
            }
        }
    }
}
