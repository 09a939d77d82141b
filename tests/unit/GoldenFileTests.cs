using System.Buffers.Binary;
using System.Text;
using MmapQueues.Format;

namespace MmapQueues.Tests;

/// <summary>
/// Small queue directories checked in under golden/: golden/v1 was written by the format-1 code and can no
/// longer be produced (it must keep opening as it is); golden/v2 is what this code writes. A change to the
/// format makes the v2 tests fail until those files are regenerated on purpose (see golden/README.md):
/// <c>MMAPQ_REGEN_GOLDEN=$PWD/tests/unit/golden/v2 dotnet test tests/unit --filter GoldenV2QueueOpens</c>.
/// </summary>
public class GoldenFileTests
{
    private static readonly Guid QueueId = new("6d6d6170-7175-6575-2d67-6f6c64656e31");
    private static readonly string[] ThreeRecords = ["first", "", "the third record, a little longer than the others"];
    private const string FirstSegment = "00000000000000000000.seg";
    private static MmapQueueOptions Options => new() { SegmentSizeBytes = 4096, FlushMode = FlushMode.Async, QueueIdForNewQueue = QueueId };

    private static string GoldenDir(string version, string name) => Path.Combine(AppContext.BaseDirectory, "golden", version, name);

    /// <summary>The generator of golden/v2 (golden/v1 was made by the same steps with the format-1 code).</summary>
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
                string seg = Path.Combine(dir, FirstSegment);
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

    private static void ReadExactly(MmapQueue q, string name, int expected, bool thenNothing = true)
    {
        using var r = q.OpenReader();
        for (int i = 0; i < expected; i++)
        {
            Assert.True(r.TryRead(out var p), $"record {i} of {name} missing");
            Assert.Equal(ThreeRecords[i], Encoding.UTF8.GetString(p));
        }
        if (thenNothing) Assert.False(r.TryRead(out _));
    }

    private static uint VersionOf(string segment) =>
        BinaryPrimitives.ReadUInt32LittleEndian(File.ReadAllBytes(segment).AsSpan(SegmentLayout.VersionOffset));

    [Theory]
    [InlineData("empty", 0)]
    [InlineData("three-records", 3)]
    [InlineData("torn-tail", 2)]
    public void GoldenV1QueueOpensAsItIsAndReadsTheExpectedRecords(string name, int expected)
    {
        using var tmp = new TempDir();
        Assert.True(Directory.Exists(GoldenDir("v1", name)), $"golden directory {GoldenDir("v1", name)} is missing");
        Assert.Equal(SegmentLayout.FormatVersion1, VersionOf(Path.Combine(GoldenDir("v1", name), FirstSegment)));
        RecoveryTests.CopyDirectory(GoldenDir("v1", name), tmp.Path);
        using (var q = new MmapQueue(tmp.Path, Options)) ReadExactly(q, name, expected);
        Assert.Equal(SegmentLayout.FormatVersion1, VersionOf(Path.Combine(tmp.Path, FirstSegment))); // read as it is, not upgraded
    }

    [Fact]
    public void AppendingToAV1QueueKeepsItsSegmentV1AndStartsAV2Segment()
    {
        using var tmp = new TempDir();
        RecoveryTests.CopyDirectory(GoldenDir("v1", "three-records"), tmp.Path);
        string v1Segment = Path.Combine(tmp.Path, FirstSegment);
        byte[] before = File.ReadAllBytes(v1Segment);
        const int Added = 100; // 100-byte payloads: about 36 fit in a 4 KiB segment, so this rolls
        using (var q = new MmapQueue(tmp.Path, Options))
        {
            for (int i = 0; i < Added; i++) Assert.Equal(3 + i, q.Enqueue(TestPayloads.For(3 + i, 100)));
            Assert.True(q.Segments.Length >= 3, "the appends should have rolled to new segments");
        }
        byte[] after = File.ReadAllBytes(v1Segment);
        Assert.Equal(SegmentLayout.FormatVersion1, VersionOf(v1Segment));
        Assert.True(before.AsSpan(0, SegmentLayout.StateOffset).SequenceEqual(after.AsSpan(0, SegmentLayout.StateOffset)), "the v1 header's fixed part changed");
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(after.AsSpan(SegmentLayout.StateOffset))); // v1 has no state word: never set
        string[] files = QueueTestKit.SegmentFileNames(tmp.Path);
        Assert.All(files.Skip(1), f => Assert.Equal(SegmentLayout.FormatVersion, VersionOf(Path.Combine(tmp.Path, f))));

        using var reopened = new MmapQueue(tmp.Path, Options);
        ReadExactly(reopened, "three-records", 3, thenNothing: false);
        Assert.Equal(3 + Added, QueueTestKit.ReadAllAndCheck(reopened, 3, _ => 100));
    }

    [Theory]
    [InlineData("empty", 0)]
    [InlineData("three-records", 3)]
    [InlineData("torn-tail", 2)]
    public void GoldenV2QueueOpensAndReadsTheExpectedRecords(string name, int expected)
    {
        using var tmp = new TempDir();
        if (Environment.GetEnvironmentVariable("MMAPQ_REGEN_GOLDEN") is { Length: > 0 } regen)
        {
            string target = Path.Combine(regen, name);
            if (Directory.Exists(target)) Directory.Delete(target, true);
            Make(name, target);
        }
        Assert.True(Directory.Exists(GoldenDir("v2", name)), $"golden directory {GoldenDir("v2", name)} is missing");
        Assert.Equal(SegmentLayout.FormatVersion, VersionOf(Path.Combine(GoldenDir("v2", name), FirstSegment)));
        RecoveryTests.CopyDirectory(GoldenDir("v2", name), tmp.Path);
        using var q = new MmapQueue(tmp.Path, Options);
        ReadExactly(q, name, expected);
    }

    [Theory]
    [InlineData("empty")]
    [InlineData("three-records")]
    public void WritingTheSameRecordsTodayReproducesTheV2GoldenBytes(string name)
    {
        using var tmp = new TempDir();
        Make(name, tmp.Path);
        foreach (string file in new[] { "queue.meta", FirstSegment })
            Assert.True(File.ReadAllBytes(Path.Combine(GoldenDir("v2", name), file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(tmp.Path, file))),
                $"{name}/{file} differs from the golden copy: the on-disk format changed");
    }

    [Fact]
    public void TheV2GoldenQueueClosedCleanlyCarriesItsRecordCountAndCleanClose()
    {
        byte[] seg = File.ReadAllBytes(Path.Combine(GoldenDir("v2", "three-records"), FirstSegment));
        SegmentHeader h = SegmentHeader.Read(seg);
        int end = SegmentLayout.FirstRecordOffset + ThreeRecords.Sum(r => SegmentLayout.FrameLength(Encoding.UTF8.GetByteCount(r)));
        Assert.Equal(end, h.DurableEnd);
        Assert.Equal(3, h.DurableRecords);
        Assert.True(h.CleanClose);
        Assert.Null(h.Check(0, 4096, QueueId));
    }
}
