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
