namespace MmapQueues.Tests;

public class RoundTripTests
{
    private static MmapQueueOptions Small(FlushMode mode = FlushMode.Async) => TestOptions.Small(mode);

    private static byte[] Payload(long seq, int length) => TestPayloads.For(seq, length);

    [Fact]
    public void EmptySmallOddAndSegmentSpanningPayloadsReadBackInOrder()
    {
        using var dir = new TempDir();
        int[] sizes = [0, 1, 7, 8, 9, 63, 64, 1000, 4095, 20_000, 40_000, 3, 0, 65_000];
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < sizes.Length; i++) Assert.Equal(i, q.Enqueue(Payload(i, sizes[i])));
        Assert.Equal(sizes.Length, q.NextSequence);
        using var r = q.OpenReader();
        for (int i = 0; i < sizes.Length; i++)
        {
            Assert.True(r.TryRead(out var p), $"record {i} missing");
            Assert.Equal(Payload(i, sizes[i]), p.ToArray());
        }
        Assert.False(r.TryRead(out _));
        Assert.True(q.Segments.Length > 1, "the payloads should span several 64 KiB segments");
    }

    [Fact]
    public void ReopenAfterDisposeReturnsEveryRecordInOrder()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Small()))
            for (int i = 0; i < 5000; i++) q.Enqueue(Payload(i, i % 100));
        using (var q = new MmapQueue(dir.Path, Small()))
        {
            Assert.Equal(5000, q.NextSequence);
            Assert.Equal(5000, q.DurableSequence);
            for (int i = 5000; i < 6000; i++) Assert.Equal(i, q.Enqueue(Payload(i, i % 100)));
        }
        using (var q = new MmapQueue(dir.Path, Small()))
        {
            using var r = q.OpenReader();
            for (int i = 0; i < 6000; i++)
            {
                Assert.True(r.TryRead(out var p));
                Assert.Equal(Payload(i, i % 100), p.ToArray());
            }
            Assert.False(r.TryRead(out _));
        }
    }
}
