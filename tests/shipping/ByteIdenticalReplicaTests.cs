namespace MmapQueues.Tests.Shipping;

public sealed class ByteIdenticalReplicaTests
{
    [Fact]
    public void OneGibibyteOfMixedRecordsShipsToByteIdenticalSegments()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        long records;
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 32L << 20 }))
        {
            records = Loopback.AppendMixed(q, 1L << 30, seed: 1);
            Assert.Equal(q.NextSequence, Loopback.Ship(q, replica));
        }
        Loopback.AssertSameSegments(source, replica);
        Assert.True(Directory.GetFiles(replica, "*.seg").Length >= 32, "1 GiB in 32 MiB segments rolls at least 31 times");
        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "queue.meta")), File.ReadAllBytes(Path.Combine(replica, "queue.meta")));
        Assert.Equal(records, Loopback.AssertSameRecords(source, replica) + CountAborted(source));
    }

    [Fact]
    public void ExportStopsAtAClaimInProgressAndShipsTheRestOnceItIsPublished()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        for (int i = 0; i < 3; i++) q.Enqueue(new byte[100]);
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var writer = new Thread(() => q.Enqueue(50, 0, (span, _) => { inside.Set(); release.Wait(); span.Fill(9); })) { IsBackground = true };
        writer.Start();
        Assert.True(inside.Wait(TimeSpan.FromSeconds(30)));
        q.Enqueue(new byte[100]); // published behind the open claim
        Assert.Equal(3, Loopback.Ship(q, replica)); // stops at the claim (sequence 3): the record after it waits too
        release.Set();
        writer.Join();
        Assert.Equal(5, Loopback.Ship(q, replica));
        q.Dispose(); // its header watermark final, as the replica's
        Loopback.AssertSameSegments(source, replica);
    }

    [Fact]
    public void SegmentFilledExactlyRollsAtTheSameBoundaryOnTheReplica()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        const long size = 64 << 10;
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = size }))
        {
            // 64 B header + 4 frames of 16 KiB - 32 B leave 64 bytes; a 56-byte payload fills the segment to its last byte.
            for (int i = 0; i < 4; i++) q.Enqueue(new byte[(16 << 10) - 32 - 8]);
            q.Enqueue(new byte[56]);
            Loopback.Ship(q, replica); // ends while the full segment is still the active one
            q.Enqueue("next segment"u8);
            q.Enqueue("and one more"u8);
            Loopback.Ship(q, replica); // resumes at offset == segment size: the replica rolls lazily, like the source
            Assert.Equal(2, Directory.GetFiles(source, "*.seg").Length);
        }
        Loopback.AssertSameSegments(source, replica);
        Assert.Equal(7, Loopback.AssertSameRecords(source, replica));
    }

    [Fact]
    public void NewReplicaStartsAtTheSegmentHoldingFromSequence()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 }))
        {
            for (int i = 0; i < 100; i++) q.Enqueue(new byte[3000]);
            long from = 50;
            long startBase = q.Segments.Last(s => s.BaseSequence <= from).BaseSequence;
            Assert.True(startBase > 0);
            Assert.Equal(100, Loopback.Ship(q, replica, from));
            using var r = new MmapQueue(replica);
            Assert.Equal(startBase, r.FirstSequence);
            Assert.Equal(100, r.NextSequence);
        }
        foreach (string f in Directory.GetFiles(replica, "*.seg"))
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, Path.GetFileName(f))), File.ReadAllBytes(f));
    }

    [Fact]
    public void ShippingAnUpToDateReplicaSendsNothingAndReturnsTheSamePosition()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        for (int i = 0; i < 10; i++) q.Enqueue(new byte[100]);
        Assert.Equal(10, Loopback.Ship(q, replica));
        Assert.Equal(10, Loopback.Ship(q, replica));
    }

    [Fact]
    public async Task AHoleBeforeTheSourceTailsWatermarkIsReportedNotShippedAsTheEnd()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        var options = new MmapQueueOptions { SegmentSizeBytes = 64 << 10 };
        using (var q = new MmapQueue(source, options))
            for (int i = 0; i < 20; i++) q.Enqueue(new byte[100]);
        string seg = Path.Combine(source, "00000000000000000000.seg");
        long hole = 64 + 3 * 112; // the commit word of record 3: opening a cleanly closed tail does not walk to it
        using (var fs = new FileStream(seg, FileMode.Open, FileAccess.ReadWrite)) { fs.Position = hole; fs.Write(new byte[4]); }

        using var reopened = new MmapQueue(source, options);
        (System.Net.Sockets.Socket s, System.Net.Sockets.Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(replica, r);
            var e = Assert.IsType<QueueCorruptedException>(Record.Exception(() => reopened.ExportTo(s)));
            Assert.Equal((seg, hole), (e.FilePath, e.Offset));
            Assert.Contains("a zero commit word", e.Message);
            await Record.ExceptionAsync(() => received.WaitAsync(TimeSpan.FromSeconds(30))); // the receiver sees the session end; its error is not this test's
        }
    }

    private static long CountAborted(string dir)
    {
        using var q = new MmapQueue(dir);
        long payloads = 0;
        using var r = q.OpenReader();
        while (r.TryRead(out _)) payloads++;
        return q.NextSequence - payloads;
    }
}
