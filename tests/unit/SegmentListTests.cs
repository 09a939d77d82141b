using MmapQueues.Storage;

namespace MmapQueues.Tests;

/// <summary>The segment list alone: lookups by sequence, growth at the end, removal of a prefix, the space signal.</summary>
public class SegmentListTests
{
    // Unmapped segments: the list only reads their base sequence (and index path on removal).
    private static Segment[] Segments(params long[] bases) =>
        bases.Select(b => new Segment(Path.Combine(Path.GetTempPath(), $"mmapq-list-{Guid.NewGuid():N}.seg"), b, 4096)).ToArray();

    [Fact]
    public void FindReturnsTheLastSegmentWhoseBaseIsAtOrBelowTheSequence()
    {
        var list = new SegmentList(Segments(10, 20, 35));
        Assert.Null(list.Find(9));
        Assert.Equal(10, list.Find(10)!.BaseSequence);
        Assert.Equal(10, list.Find(19)!.BaseSequence);
        Assert.Equal(20, list.Find(20)!.BaseSequence);
        Assert.Equal(35, list.Find(long.MaxValue)!.BaseSequence);
    }

    [Fact]
    public void StartingAtFindsOnlyAnExactBase()
    {
        var list = new SegmentList(Segments(10, 20));
        Assert.Equal(20, list.StartingAt(20)!.BaseSequence);
        Assert.Null(list.StartingAt(21));
        Assert.Null(list.StartingAt(5));
    }

    [Fact]
    public void AfterGivesTheNextListedSegmentAndNullForTheLastOrAnUnlistedOne()
    {
        Segment[] s = Segments(0, 8, 16);
        var list = new SegmentList(s);
        Assert.Same(s[1], list.After(s[0]));
        Assert.Null(list.After(s[2]));
        Assert.Null(list.After(Segments(99)[0]));
    }

    [Fact]
    public void AddAppendsWithoutChangingAnEarlierSnapshot()
    {
        var list = new SegmentList(Segments(0));
        Segment[] before = list.Snapshot;
        list.Add(Segments(8)[0]);
        Assert.Single(before);
        Assert.Equal([0L, 8L], list.Snapshot.Select(s => s.BaseSequence));
        Assert.Equal(8, list.StartingAt(8)!.BaseSequence);
    }

    [Fact]
    public async Task RemovePrefixDropsTheOldestAndCompletesTheSpaceSignalTakenBefore()
    {
        var list = new SegmentList(Segments(0, 8, 16));
        Task freed = list.SpaceFreed;
        Assert.False(freed.IsCompleted);
        list.RemovePrefix(2);
        await freed.WaitAsync(TimeSpan.FromSeconds(5)); // throws TimeoutException if a waiting producer was not woken
        Assert.Equal([16L], list.Snapshot.Select(s => s.BaseSequence));
        Assert.Equal(16, list.First.BaseSequence);
        Assert.Null(list.Find(15));
        Assert.False(list.SpaceFreed.IsCompleted); // a fresh signal for the next removal
    }

    [Fact]
    public void RemovePrefixRefusesToRemoveTheLastSegment()
    {
        var list = new SegmentList(Segments(0, 8));
        var e = Assert.Throws<InvalidOperationException>(() => list.RemovePrefix(2));
        Assert.Contains("at most 1 of 2 segments", e.Message);
        Assert.Equal(2, list.Count);
    }

    [Fact]
    public void AnEmptyListIsRefused() =>
        Assert.Throws<ArgumentException>(() => new SegmentList([]));
}
