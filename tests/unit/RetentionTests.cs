using MmapQueues.Storage;
using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

public class RetentionTests
{
    private const int R = RecordsPerSegment;

    private static string[] Names(params long[] bases) => bases.Select(SegmentName).ToArray();

    [Fact]
    public void RetentionDeletesExactlyTheFullyConsumedSegmentsAndTheirMappings()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(o => o.RecycleSegments = false)); // recycling keeps one more mapped: RecycleTests
        Fill(q, 10 * R + 5);
        var a = q.OpenReader("a");
        var b = q.OpenReader("b");
        a.Seek(3 * R + 5);
        a.Commit();
        Assert.Equal(11, SegmentFileNames(dir.Path).Length); // b still needs everything
        b.Seek(5 * R);
        b.Commit(); // the slowest, a, is inside segment 3: segments 0, 1 and 2 are fully consumed
        Assert.Equal(Names(3 * R, 4 * R, 5 * R, 6 * R, 7 * R, 8 * R, 9 * R, 10 * R), SegmentFileNames(dir.Path));
        Assert.Equal(3 * R, q.FirstSequence);
        Assert.Empty(Directory.GetFiles(dir.Path, SegmentName(0)[..^4] + ".idx"));
        ReadExpecting(a, 2); // still reading where it was

        q.WaitForBackgroundWork();
        int heldByReaders = MappingsUnder(dir.Path);
        a.Dispose();
        b.Dispose();
        int afterReaders = MappingsUnder(dir.Path);
        Assert.True(afterReaders <= heldByReaders - 2, $"disposing two readers on two segments should unmap both: {heldByReaders} -> {afterReaders}");
        Assert.True(afterReaders <= 2, $"only the active segment and the spare should stay mapped; found {afterReaders}");
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/maps"), l => l.Contains(dir.Path) && l.Contains("(deleted)"));
        Assert.True(OpenFilesUnder(dir.Path) <= 3, "the lock, notify and cursors files are the only descriptors the queue keeps");
    }

    [Fact]
    public void RetentionNeverDeletesTheSegmentAReaderIsOnNorAnyAfterIt()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Fill(q, 6 * R + 1);
        using var anonymous = q.OpenReader(R + 3); // on segment 1
        Assert.True(anonymous.TryRead(out var view));
        using (var c = q.OpenReader("c"))
        {
            c.Seek(5 * R);
            c.Commit();
        }
        Assert.Equal(Names(R, 2 * R, 3 * R, 4 * R, 5 * R, 6 * R), SegmentFileNames(dir.Path)); // only segment 0 went
        Assert.True(view.SequenceEqual(Payload(R + 3)), "a live view must stay valid through retention");

        ReadExpecting(anonymous, 2 * R); // now on segment 3
        Assert.Equal(2, q.ApplyRetention());
        Assert.Equal(Names(3 * R, 4 * R, 5 * R, 6 * R), SegmentFileNames(dir.Path));
    }

    [Fact]
    public void WithoutNamedConsumersOrLimitsNothingIsDeleted()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Fill(q, 4 * R + 1);
        q.Flush();
        Assert.Equal(0, q.ApplyRetention());
        Assert.Equal(5, SegmentFileNames(dir.Path).Length);
    }

    [Fact]
    public void RetentionAgeDeletesOldSegmentsAndCountsWhatNoConsumerReadAsDropped()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(o => o.RetentionAge = TimeSpan.FromDays(1)));
        Fill(q, 4 * R + 1);
        using (var c = q.OpenReader("c"))
        {
            c.Seek(R + 10);
            c.Commit();
        }
        Assert.Equal(Names(R, 2 * R, 3 * R, 4 * R), SegmentFileNames(dir.Path)); // segment 0: consumed, not dropped
        q.Flush();
        q.WaitForBackgroundWork();
        DateTime twoDaysAgo = DateTime.UtcNow.AddDays(-2);
        File.SetLastWriteTimeUtc(Path.Combine(dir.Path, SegmentName(R)), twoDaysAgo);
        File.SetLastWriteTimeUtc(Path.Combine(dir.Path, SegmentName(2 * R)), twoDaysAgo);
        File.SetLastWriteTimeUtc(Path.Combine(dir.Path, SegmentName(4 * R)), twoDaysAgo); // the active one never goes
        Assert.Equal(2, q.ApplyRetention());
        Assert.Equal(Names(3 * R, 4 * R), SegmentFileNames(dir.Path));
        Assert.Equal(R - 10 + R, q.DroppedRecords); // 54 unread records of segment 1, all 64 of segment 2
        using var c2 = q.OpenReader("c");
        Assert.Equal(3 * R, c2.NextSequence); // resumes at the first retained record
    }

    [Fact]
    public void ALeftoverSegmentBelowTheRetentionFloorIsRemovedOnOpenNotTakenForATear()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options())) Fill(q, 5 * R + 1);
        // A crash in the middle of retention: segment 0 was held by a reader (its unlink deferred), segment 1
        // was unlinked, the floor had been raised first.
        var meta = QueueDirectory.ReadMeta(Path.Combine(dir.Path, "queue.meta"));
        var cursors = CursorStore.Open(dir.Path, meta.QueueId);
        cursors.RaiseFloor(2 * R);
        cursors.Dispose();
        File.Delete(Path.Combine(dir.Path, SegmentName(R)));
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Assert.Equal(2 * R, q.FirstSequence);
            Assert.Equal(5 * R + 1, q.NextSequence);
            using var r = q.OpenReader(2 * R);
            ReadExpecting(r, 3 * R + 1);
        }
        Assert.Equal(Names(2 * R, 3 * R, 4 * R, 5 * R), SegmentFileNames(dir.Path));
    }

    /// <summary>
    /// Every segment file gone (an operator cleared them, or a crash lost the last renames after retention's
    /// unlinks) while the cursors file keeps a retention floor: the queue starts again at the floor, not at 0.
    /// Restarted at 0, the new segments would lie below the floor and the next open would delete them unread.
    /// </summary>
    [Fact]
    public void AQueueWhoseSegmentFilesAreAllGoneStartsAgainAtTheRetentionFloor()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options())) Fill(q, 5 * R + 1);
        var meta = QueueDirectory.ReadMeta(Path.Combine(dir.Path, "queue.meta"));
        using (var cursors = CursorStore.Open(dir.Path, meta.QueueId)) cursors.RaiseFloor(4 * R);
        foreach (string seg in Directory.GetFiles(dir.Path, "*.seg")) File.Delete(seg);

        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Assert.Equal(4 * R, q.NextSequence);
            Fill(q, 3 * R); // several segments, none of them read yet
        }
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Assert.Equal(4 * R, q.FirstSequence); // nothing appended since was taken for a leftover below the floor
            using var r = q.OpenReader(4 * R);
            ReadExpecting(r, 3 * R);
        }
    }

    [Fact]
    public void AReaderScanningManySegmentsKeepsMappingsAndDescriptorsBounded()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options())) Fill(q, 30 * R);
        Assert.Equal(0, OpenFilesUnder(dir.Path));
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            q.WaitForBackgroundWork();
            int maxMaps = 0, maxFiles = 0;
            using var r = q.OpenReader(0);
            for (int s = 0; s < 30; s++)
            {
                ReadExpecting(r, R);
                maxMaps = Math.Max(maxMaps, MappingsUnder(dir.Path));
                maxFiles = Math.Max(maxFiles, OpenFilesUnder(dir.Path));
            }
            Assert.True(maxMaps <= 3, $"reader's segment, active segment and spare at most; saw {maxMaps} mappings");
            Assert.True(maxFiles <= 2, $"lock and cursors files at most; saw {maxFiles} descriptors");
        }
        Assert.Equal(0, MappingsUnder(dir.Path));
        Assert.Equal(0, OpenFilesUnder(dir.Path));
    }
}
