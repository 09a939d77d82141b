using MmapQueues.Tests.Crash.Harness;

namespace MmapQueues.Tests.Crash;

/// <summary>A segment file missing from the middle of a queue is corruption, not a torn tail.</summary>
public sealed class MissingSegmentTests
{
    /// <summary>
    /// Opening used to take a sealed segment followed by a gap in sequences for "a torn tail in an earlier
    /// segment" and deleted every later segment, durable records and all, without an error.
    /// </summary>
    [Fact]
    public void MissingMiddleSegmentIsReportedAndLaterSegmentsAreKept()
    {
        using var dir = new TempDir();
        CorruptionRegressionTests.MakeQueue(dir.Path, 500);
        string[] segments = Directory.GetFiles(dir.Path, "*.seg").Order(StringComparer.Ordinal).ToArray();
        Assert.True(segments.Length >= 4, $"expected at least 4 segments, found {segments.Length}");
        File.Delete(segments[1]);

        var e = Assert.Throws<QueueCorruptedException>(() => new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = 8 << 10 }).Dispose());
        Assert.Equal(segments[0], e.FilePath);
        Assert.Contains(Path.GetFileName(segments[1]), e.Message);
        Assert.Equal(segments.Skip(2), Directory.GetFiles(dir.Path, "*.seg").Order(StringComparer.Ordinal).Skip(1)); // nothing deleted
    }
}
