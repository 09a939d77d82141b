using System.Net.Sockets;

namespace MmapQueues.Tests.Shipping;

/// <summary>ExportOptions.ConsumerName: the replica's acknowledgements commit a named consumer, so retention frees what it holds.</summary>
public sealed class RetentionByShippingTests
{
    private const int Records = 2000; // 500 B each in 64 KiB segments: about 16 segments

    [Fact]
    public async Task ShippingAsANamedConsumerLetsRetentionDeleteTheSegmentsTheReplicaHoldsDurably()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        for (int i = 0; i < Records; i++) q.Enqueue(new byte[500]);
        int segmentsBefore = Directory.GetFiles(source, "*.seg").Length;

        Assert.Equal(Records, await Ship(q, replica, "replica"));

        Assert.Equal(Records, q.Consumers["replica"]);
        Assert.Single(Directory.GetFiles(source, "*.seg")); // the active segment stays
        Assert.True(segmentsBefore > 10, $"the test needs many segments; it made {segmentsBefore}");
        Assert.True(q.FirstSequence > 0, "retention deleted nothing");
        using var rq = new MmapQueue(replica);
        Assert.Equal((0L, (long)Records), (rq.FirstSequence, rq.NextSequence)); // the replica keeps everything
    }

    [Fact]
    public async Task TheNextSessionAfterRetentionDeletedShippedSegmentsResumesTheReplica()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        for (int i = 0; i < Records; i++) q.Enqueue(new byte[500]);
        Assert.Equal(Records, await Ship(q, replica, "replica"));
        Assert.True(q.FirstSequence > 0, "retention deleted nothing");

        // The next run (mmapq export --consumer replica, --from left at 0): the replica resumes where it is.
        for (int i = 0; i < Records; i++) q.Enqueue(new byte[500]);
        Assert.Equal(2 * Records, await Ship(q, replica, "replica"));
        using var rq = new MmapQueue(replica);
        Assert.Equal((0L, 2L * Records), (rq.FirstSequence, rq.NextSequence));
    }

    [Fact]
    public async Task AnotherConsumerBehindTheReplicaStillHoldsItsSegments()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        using (q.OpenReader("slow")) { } // registered at 0, never reads
        for (int i = 0; i < Records; i++) q.Enqueue(new byte[500]);

        Assert.Equal(Records, await Ship(q, replica, "replica"));

        Assert.Equal(Records, q.Consumers["replica"]);
        Assert.Equal(0, q.FirstSequence);
    }

    [Fact]
    public async Task ShippingAsAConsumerWhoseReaderIsOpenIsRefused()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Sub("source"), new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        q.Enqueue("x"u8);
        using var reader = q.OpenReader("replica");
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => q.ExportToAsync(s, 0, new ExportOptions { ConsumerName = "replica" }));
            Assert.Contains("Consumer 'replica'", e.Message);
        }
    }

    private static async Task<long> Ship(MmapQueue q, string replica, string consumer)
    {
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(replica, r);
            long sent = await q.ExportToAsync(s, 0, new ExportOptions { ConsumerName = consumer }).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(sent, await received.WaitAsync(TimeSpan.FromSeconds(60)));
            return sent;
        }
    }
}
