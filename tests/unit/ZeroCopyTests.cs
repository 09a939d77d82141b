namespace MmapQueues.Tests;

public class ZeroCopyTests
{
    [Fact]
    public void TryReadReturnsAViewIntoTheMappedSegment()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        for (int i = 0; i < 100; i++) q.Enqueue(TestPayloads.For(i, 100));
        using var r = q.OpenReader();
        var segment = q.Segments[0];
        for (int i = 0; i < 100; i++)
        {
            Assert.True(r.TryRead(out var view));
            Assert.True(segment.Region.Contains(view), $"record {i} was copied out of the mapping");
        }
    }

    [Fact]
    public void ASegmentStaysMappedWhileAReaderHoldsAViewIntoIt()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small(segmentSize: 8192));
        for (int i = 0; i < 1000; i++) q.Enqueue(TestPayloads.For(i, 40));
        var first = q.Segments[0];
        q.WaitForBackgroundWork(); // the index build holds a segment it just sealed until its scan ends
        Assert.False(first.IsMapped); // sealed and unread: not mapped
        var r = q.OpenReader();
        Assert.True(r.TryRead(out _));
        Assert.True(first.IsMapped);
        Assert.Equal(1, first.ReferenceCount);
        while (r.NextSequence < 400) Assert.True(r.TryRead(out _)); // moves past the first segment
        Assert.False(first.IsMapped);
        r.Dispose();
    }
}
