using MmapQueues.Crash;
using MmapQueues.Tests.Crash.Harness;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// On a small loop filesystem, the child fills the disk (a preallocated filler leaves room for a few
/// segments) and appends until a segment cannot be created: a clear IOException, never a SIGBUS; every
/// record appended before stays readable; deleting the filler lets appends resume.
/// </summary>
public sealed class DiskFullTests(ITestOutputHelper output)
{
    private const long SegmentBytes = 1 << 20;
    private const int MaxExtra = 200;

    [RequiresLoopFilesystemFact("ext4")]
    public void FullDiskFailsSegmentCreationCleanlyAndAppendsResumeWhenSpaceIsFreed()
    {
        using var fs = LoopFilesystem.Create("ext4", 32L << 20);
        string dir = Path.Combine(fs.MountPoint, "q"), filler = Path.Combine(fs.MountPoint, "filler");
        int exit;
        ChildProcess child;
        using (child = ChildProcess.Start(["--dir", dir, "--mode", "Async", "--segment", SegmentBytes.ToString(), "--max-extra", MaxExtra.ToString(),
                   "--fill", filler, "--fill-leave", (3 * SegmentBytes + (SegmentBytes / 2)).ToString()]))
            exit = child.WaitForExit(TimeSpan.FromSeconds(120));

        IReadOnlyList<string> lines = child.OtherLines;
        output.WriteLine($"child exit code {exit}; {string.Join(" | ", lines)}");
        Assert.True(exit == 0, $"the child died with exit code {exit} (134/135 = SIGABRT/SIGBUS): {string.Join(" | ", lines)}");
        string failure = Assert.Single(lines, l => l.StartsWith("F ", StringComparison.Ordinal));
        Assert.StartsWith("F IOException: Cannot create segment", failure);
        Assert.Contains("the disk is full", failure);

        long beforeFull = child.Enqueued.Where(e => TestRecord.Run(e.Value) == 0).Max(e => e.Key) + 1;
        long total = child.Enqueued.Keys.Max() + 1;
        Assert.True(beforeFull > 0 && total > beforeFull, $"appended {beforeFull} records before the disk filled and {total - beforeFull} after freeing space");
        string[] reads = lines.Where(l => l.StartsWith("R ", StringComparison.Ordinal)).ToArray();
        Assert.Equal([$"R {beforeFull}", $"R {total}"], reads); // everything appended stayed readable, before and after
        Assert.Contains("OK", lines);

        RecoveredQueue rec = QueueChecker.OpenAndRead(dir, SegmentBytes, MaxExtra);
        Assert.Equal(total, rec.Tags.Count);
        foreach ((long seq, long tag) in child.Enqueued) Assert.Equal(tag, rec.Tags[(int)seq]);
        output.WriteLine($"disk full after {beforeFull} records ({failure}); {total - beforeFull} more after freeing space; all {total} read back intact");
    }
}
