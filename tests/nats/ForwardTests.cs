using MmapQueues.Nats;
using MmapQueues.Tests.Nats.Harness;
using NATS.Client.Core;
using NATS.Net;

namespace MmapQueues.Tests.Nats;

public class ForwardTests
{
    private static NatsForwarderOptions Options(string url, string stream, int batchBytes = 0) => new()
    {
        NatsOpts = NatsOpts.Default with { Url = url },
        Stream = stream,
        Subject = $"{stream}.records",
        BatchMaxBytes = batchBytes,
    };

    /// <summary>CI forwards MMAPQ_NATS_RECORDS (default 200,000) records; set it to 1000000 for the full run.</summary>
    [RequiresNatsServerFact]
    public async Task EveryRecordArrivesOnceInOrderWithItsPayload()
    {
        int n = StreamCheck.EnvInt("MMAPQ_NATS_RECORDS", 200_000);
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        StreamCheck.Append(dir.Sub("q"), 0, n);
        using (var q = new MmapQueue(dir.Sub("q")))
        {
            await using var forwarder = new NatsForwarder(q, Options(server.Url, "ONE"));
            Assert.Equal(n, await forwarder.RunAsync());
            Assert.Equal(n, q.Consumers[NatsForwarderOptions.DefaultConsumerName]);
        }
        await StreamCheck.AssertHoldsExactly(server.Url, "ONE", n);
    }

    [RequiresNatsServerFact]
    public async Task AFollowingForwarderIdleLongerThanTheAckTimeoutResumesWithoutARetry()
    {
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        using var q = new MmapQueue(dir.Sub("q"));
        var log = new ForwarderEvents();
        NatsForwarderOptions options = Options(server.Url, "IDLE");
        options.Follow = true;
        options.AckTimeout = TimeSpan.FromMilliseconds(400);
        await using var forwarder = new NatsForwarder(q, options, log);
        using var stop = new CancellationTokenSource();
        Task<long> run = forwarder.RunAsync(stop.Token);
        for (int i = 0; i < 100; i++) q.Enqueue(StreamCheck.Payload(i));
        Assert.True(SpinWait.SpinUntil(() => q.Consumers.GetValueOrDefault(NatsForwarderOptions.DefaultConsumerName) == 100, TimeSpan.FromSeconds(30)));
        Thread.Sleep(1200); // idle for three ack timeouts
        for (int i = 100; i < 200; i++) q.Enqueue(StreamCheck.Payload(i));
        Assert.True(SpinWait.SpinUntil(() => q.Consumers.GetValueOrDefault(NatsForwarderOptions.DefaultConsumerName) == 200, TimeSpan.FromSeconds(30)));
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.DoesNotContain(log.Events, e => e.Id == 1063);
        await StreamCheck.AssertHoldsExactly(server.Url, "IDLE", 200);
    }

    [RequiresNatsServerFact]
    public async Task BatchedMessagesCarryEveryRecordOnceInOrder()
    {
        const int n = 50_000;
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        StreamCheck.Append(dir.Sub("q"), 0, n);
        using (var q = new MmapQueue(dir.Sub("q")))
        {
            await using var forwarder = new NatsForwarder(q, Options(server.Url, "BATCH", batchBytes: 16 << 10));
            Assert.Equal(n, await forwarder.RunAsync());
        }
        await StreamCheck.AssertHoldsExactly(server.Url, "BATCH", n);
    }

    [RequiresNatsServerFact]
    public async Task AStreamThatCannotBeCreatedStopsForwardingWithTheServersReason()
    {
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        using var q = new MmapQueue(dir.Sub("q"));
        q.Enqueue("x"u8);
        NatsForwarderOptions options = Options(server.Url, "NOPE");
        options.StreamReplicas = 3; // one server cannot hold three replicas
        await using var forwarder = new NatsForwarder(q, options);
        var e = await Assert.ThrowsAsync<NatsForwardException>(() => forwarder.RunAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("stream NOPE is missing and could not be created", e.Message);
        Assert.Equal(0, q.Consumers[NatsForwarderOptions.DefaultConsumerName]);
    }

    [RequiresNatsServerFact]
    public async Task ARecordTheStreamRejectsStopsForwardingWithAnErrorNamingIt()
    {
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        await using (var nats = new NatsClient(server.Url))
        {
            var js = nats.CreateJetStreamContext();
            await js.CreateStreamAsync(new NATS.Client.JetStream.Models.StreamConfig("SMALL", ["SMALL.records"]) { MaxMsgSize = 600 });
        }
        using var q = new MmapQueue(dir.Sub("q"));
        for (int i = 0; i < 10; i++) q.Enqueue(new byte[i == 7 ? 1000 : 50]);
        await using var forwarder = new NatsForwarder(q, Options(server.Url, "SMALL"));
        var e = await Assert.ThrowsAsync<NatsForwardException>(() => forwarder.RunAsync());
        Assert.True(e.Sequence == 7, e.ToString());
        Assert.Contains("Record 7 of queue", e.Message);
        Assert.Equal(7, q.Consumers[NatsForwarderOptions.DefaultConsumerName]); // the records before it are committed
    }
}
