namespace MmapQueues.Tests;

public class ClaimTests
{
    [Fact]
    public void ClaimWritesStraightIntoTheSegmentAndReadsBack()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Records.Small());
        for (int i = 0; i < 1000; i++)
        {
            long seq = q.Enqueue(Records.LengthFor(i), (long)i, static (span, s) => Records.Payload(s, span.Length).CopyTo(span));
            Assert.Equal(i, seq);
        }
        Assert.Equal(1000, Records.ReadAllAndCheck(q, 0, s => Records.LengthFor(s)));
    }

    [Fact]
    public void AClaimWhoseWriterThrowsIsPublishedAsAbortedAndSkippedByReaders()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Records.Small());
        q.Enqueue(Records.Payload(0, 5));
        var e = Assert.Throws<InvalidOperationException>(() =>
            q.Enqueue(16, 0, static (span, _) => { span[0] = 42; throw new InvalidOperationException("serializer failed"); }));
        Assert.Equal("serializer failed", e.Message);
        q.Enqueue(Records.Payload(2, 5));
        using var r = q.OpenReader();
        Assert.True(r.TryRead(out var a));
        Assert.Equal(Records.Payload(0, 5), a.ToArray());
        Assert.True(r.TryRead(out var b)); // sequence 1 was aborted: the reader moves straight to 2
        Assert.Equal(Records.Payload(2, 5), b.ToArray());
        Assert.Equal(3, r.NextSequence);
        Assert.False(r.TryRead(out _));
    }
}
