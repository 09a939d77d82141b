namespace MmapQueues.Tests;

public class ClaimTests
{
    [Fact]
    public void ClaimWritesStraightIntoTheSegmentAndReadsBack()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        for (int i = 0; i < 1000; i++)
        {
            long seq = q.Enqueue(TestPayloads.LengthFor(i), (long)i, static (span, s) => TestPayloads.For(s, span.Length).CopyTo(span));
            Assert.Equal(i, seq);
        }
        Assert.Equal(1000, QueueTestKit.ReadAllAndCheck(q, 0, s => TestPayloads.LengthFor(s)));
    }

    [Fact]
    public void AClaimWhoseWriterThrowsIsPublishedAsAbortedAndSkippedByReaders()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        q.Enqueue(TestPayloads.For(0, 5));
        var e = Assert.Throws<InvalidOperationException>(() =>
            q.Enqueue(16, 0, static (span, _) => { span[0] = 42; throw new InvalidOperationException("serializer failed"); }));
        Assert.Equal("serializer failed", e.Message);
        q.Enqueue(TestPayloads.For(2, 5));
        using var r = q.OpenReader();
        Assert.True(r.TryRead(out var a));
        Assert.Equal(TestPayloads.For(0, 5), a.ToArray());
        Assert.True(r.TryRead(out var b)); // sequence 1 was aborted: the reader moves straight to 2
        Assert.Equal(TestPayloads.For(2, 5), b.ToArray());
        Assert.Equal(3, r.NextSequence);
        Assert.False(r.TryRead(out _));
    }
}

public class ClaimAcrossRollTests
{
    [Fact]
    public void ASegmentStaysMappedWhileAClaimReservedBeforeItsRollIsStillWriting()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, QueueTestKit.Options());
        var first = q.Segments[0];
        var mappingBefore = first.Region;
        using var inWriter = new ManualResetEventSlim();
        using var rolled = new ManualResetEventSlim();
        using var checkedMapping = new ManualResetEventSlim();
        bool sameMapping = false;
        var writer = new Thread(() =>
        {
            q.Enqueue(100, 0, (span, _) =>
            {
                inWriter.Set();
                rolled.Wait();
                sameMapping = first.IsMapped && ReferenceEquals(first.Region, mappingBefore);
                checkedMapping.Set();
                if (!sameMapping) Thread.Sleep(Timeout.Infinite); // writing into an unmapped view would crash the test host
                span.Fill(7);
            });
        }) { IsBackground = true };
        writer.Start();
        inWriter.Wait();
        QueueTestKit.Fill(q, QueueTestKit.RecordsPerSegment + 1, settle: false); // the last one rolls while the claim is still open
        Assert.Equal(2, q.Segments.Length);
        rolled.Set();
        checkedMapping.Wait();
        Assert.True(sameMapping, "the roll unmapped the segment while a producer that reserved before the seal was still writing into it");
        writer.Join();
        q.Dispose();
        using var reopened = new MmapQueue(dir.Path, QueueTestKit.Options());
        using var r = reopened.OpenReader(0);
        Assert.True(r.TryRead(out var p));
        Assert.Equal(100, p.Length);
        Assert.True(p.IndexOfAnyExcept((byte)7) < 0, "the claim's bytes did not reach the segment");
    }
}
