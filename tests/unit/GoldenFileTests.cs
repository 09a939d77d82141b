using System.Text;
using MmapQueues.Format;

namespace MmapQueues.Tests;

/// <summary>
/// Small queue directories of format version 1, checked in under golden/v1. A change to the format makes
/// these tests fail until the files are regenerated on purpose:
/// <c>MMAPQ_REGEN_GOLDEN=$PWD/tests/unit/golden/v1 dotnet test tests/unit --filter GoldenQueueOpens</c>.
/// </summary>
public class GoldenFileTests
{
    private static readonly Guid QueueId = new("6d6d6170-7175-6575-2d67-6f6c64656e31");
    private static readonly string[] ThreeRecords = ["first", "", "the third record, a little longer than the others"];
    private static MmapQueueOptions Options => new() { SegmentSizeBytes = 4096, FlushMode = FlushMode.Async, QueueIdForNewQueue = QueueId };

    private static string GoldenDir(string name) => Path.Combine(AppContext.BaseDirectory, "golden", "v1", name);

    private static void Make(string name, string dir)
    {
        var q = new MmapQueue(dir, Options);
        switch (name)
        {
            case "empty":
                q.Dispose();
                break;
            case "three-records":
                foreach (string r in ThreeRecords) q.Enqueue(Encoding.UTF8.GetBytes(r));
                q.Dispose();
                break;
            case "torn-tail":
                foreach (string r in ThreeRecords) q.Enqueue(Encoding.UTF8.GetBytes(r));
                q.SimulateCrash(); // never flushed: the tail may be torn
                string seg = Path.Combine(dir, "00000000000000000000.seg");
                int third = SegmentLayout.FirstRecordOffset + SegmentLayout.FrameLength(5) + SegmentLayout.FrameLength(0);
                using (var fs = new FileStream(seg, FileMode.Open, FileAccess.ReadWrite))
                {
                    fs.Position = third + SegmentLayout.RecordHeaderSize + 20; // half the payload never reached the disk
                    fs.Write(new byte[20]);
                }
                break;
        }
        File.Delete(Path.Combine(dir, "lock"));
    }

    [Theory]
    [InlineData("empty", 0)]
    [InlineData("three-records", 3)]
    [InlineData("torn-tail", 2)]
    public void GoldenQueueOpensAndReadsTheExpectedRecords(string name, int expected)
    {
        using var tmp = new TempDir();
        if (Environment.GetEnvironmentVariable("MMAPQ_REGEN_GOLDEN") is { Length: > 0 } regen)
        {
            string target = Path.Combine(regen, name);
            if (Directory.Exists(target)) Directory.Delete(target, true);
            Make(name, target);
        }
        Assert.True(Directory.Exists(GoldenDir(name)), $"golden directory {GoldenDir(name)} is missing");
        RecoveryTests.CopyDirectory(GoldenDir(name), tmp.Path);
        using var q = new MmapQueue(tmp.Path, Options);
        using var r = q.OpenReader();
        for (int i = 0; i < expected; i++)
        {
            Assert.True(r.TryRead(out var p), $"record {i} of {name} missing");
            Assert.Equal(ThreeRecords[i], Encoding.UTF8.GetString(p));
        }
        Assert.False(r.TryRead(out _));
    }

    [Theory]
    [InlineData("empty")]
    [InlineData("three-records")]
    public void WritingTheSameRecordsTodayReproducesTheGoldenBytes(string name)
    {
        using var tmp = new TempDir();
        Make(name, tmp.Path);
        foreach (string file in new[] { "queue.meta", "00000000000000000000.seg" })
            Assert.True(File.ReadAllBytes(Path.Combine(GoldenDir(name), file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(tmp.Path, file))),
                $"{name}/{file} differs from the golden copy: the on-disk format changed");
    }
}
