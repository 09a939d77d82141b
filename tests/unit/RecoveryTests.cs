using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests;

public class RecoveryTests
{
    private const int Count = 20;
    private static int Len(long seq) => 40 + (int)seq; // last record: 59 bytes, frame 72

    /// <summary>Writes <see cref="Count"/> records and stops as a process kill would (nothing flushed, no watermark).</summary>
    private static (string Segment, int LastOffset, int LastFrame) WriteAndCrash(string dir)
    {
        var q = new MmapQueue(dir, TestOptions.Small());
        int offset = SegmentLayout.FirstRecordOffset, last = 0;
        for (int i = 0; i < Count; i++)
        {
            q.Enqueue(TestPayloads.For(i, Len(i)));
            last = offset;
            offset += SegmentLayout.FrameLength(Len(i));
        }
        string segment = q.Segments[0].Path;
        q.SimulateCrash();
        return (segment, last, SegmentLayout.FrameLength(Len(Count - 1)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TornTailFromEveryOffsetIsTruncatedAndEarlierRecordsSurvive(bool garble)
    {
        using var dir = new TempDir();
        string pristine = dir.Sub("pristine");
        var (segName, lastOffset, lastFrame) = WriteAndCrash(pristine);
        var rng = new Random(7);
        for (int from = 0; from < lastFrame; from++)
        {
            string run = dir.Sub($"run{from}");
            CopyDirectory(pristine, run);
            string seg = Path.Combine(run, Path.GetFileName(segName));
            using (var fs = new FileStream(seg, FileMode.Open, FileAccess.ReadWrite))
            {
                var tail = new byte[lastFrame - from];
                if (garble) rng.NextBytes(tail);
                fs.Position = lastOffset + from;
                fs.Write(tail);
            }
            using (var q = new MmapQueue(run, TestOptions.Small()))
            {
                long end = QueueTestKit.ReadAllAndCheck(q, 0, Len);
                // Either the tear missed the record (its padding only) or the record is gone: never a changed payload.
                Assert.InRange(end, Count - 1, Count);
                if (from < SegmentLayout.RecordHeaderSize + Len(Count - 1) && !garble) Assert.Equal(Count - 1, end);
                Assert.Equal(end, q.NextSequence);
                q.Enqueue(TestPayloads.For(end, Len(end))); // appending resumes right after the survivors
                Assert.Equal(end + 1, QueueTestKit.ReadAllAndCheck(q, 0, Len));
            }
            Directory.Delete(run, recursive: true);
        }
    }

    [Fact]
    public void TruncatedTailBytesAreZeroedSoALaterCrashCannotResurrectThem()
    {
        using var dir = new TempDir();
        var (seg, lastOffset, lastFrame) = WriteAndCrash(dir.Path);
        using (var fs = new FileStream(seg, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = lastOffset + SegmentLayout.RecordHeaderSize; // keep the commit word, break the payload
            fs.WriteByte(0xFF);
            fs.WriteByte(0xFF);
        }
        using (var q = new MmapQueue(dir.Path, TestOptions.Small())) Assert.Equal(Count - 1, q.NextSequence);
        byte[] bytes = File.ReadAllBytes(seg);
        Assert.All(bytes[lastOffset..(lastOffset + lastFrame)], b => Assert.Equal(0, b));
    }

    [Fact]
    public void FlippedByteBeforeTheTailsWatermarkIsReportedByTheReaderAndVerifyWithFileAndOffset()
    {
        using var dir = new TempDir();
        string seg;
        using (var q = new MmapQueue(dir.Path, TestOptions.Small()))
        {
            for (int i = 0; i < Count; i++) q.Enqueue(TestPayloads.For(i, Len(i)));
            seg = q.Segments[0].Path;
        } // Dispose flushes: every record is durable, so nothing here may be taken for a torn tail
        int offset5 = SegmentLayout.FirstRecordOffset + Enumerable.Range(0, 5).Sum(i => SegmentLayout.FrameLength(Len(i)));
        FlipByte(seg, offset5 + SegmentLayout.RecordHeaderSize + 3);

        using (var q = new MmapQueue(dir.Path, TestOptions.Small())) // open does not walk the durable prefix (O(1))
        {
            Assert.Equal(Count, q.NextSequence);
            using var r = q.OpenReader();
            for (int i = 0; i < 5; i++) Assert.True(r.TryRead(out _));
            var e = Assert.Throws<QueueCorruptedException>(() => r.TryRead(out _)); // never returned
            Assert.Equal(seg, e.FilePath);
            Assert.Equal(offset5, e.Offset);
            Assert.Contains($"{seg} at offset {offset5}: expected CRC32C", e.Message);
            Assert.Contains("for sequence 5", e.Message);
        }
        var report = QueueInspector.Open(dir.Path).Verify(); // what `mmapq verify` runs
        Finding f = Assert.Single(report.Findings, x => x.IsError);
        Assert.Equal((seg, (long)offset5), (f.File, f.Offset));
    }

    [Fact]
    public void FlippedByteInASealedSegmentIsReportedByTheReaderNotReturned()
    {
        using var dir = new TempDir();
        string firstSegment;
        using (var q = new MmapQueue(dir.Path, TestOptions.Small(segmentSize: 8192)))
        {
            for (int i = 0; i < 1000; i++) q.Enqueue(TestPayloads.For(i, 40));
            firstSegment = q.Segments[0].Path;
            Assert.True(q.Segments.Length > 3);
        }
        int offset2 = SegmentLayout.FirstRecordOffset + 2 * SegmentLayout.FrameLength(40);
        FlipByte(firstSegment, offset2 + 20);
        using var reopened = new MmapQueue(dir.Path, TestOptions.Small(segmentSize: 8192)); // sealed segments are trusted at open: O(segments)
        using var r = reopened.OpenReader();
        Assert.True(r.TryRead(out _));
        Assert.True(r.TryRead(out _));
        var e = Assert.Throws<QueueCorruptedException>(() => r.TryRead(out _));
        Assert.Equal(firstSegment, e.FilePath);
        Assert.Equal(offset2, e.Offset);
    }

    [Fact]
    public void ZeroedRecordBeforeTheWatermarkIsReportedAsCorruptionNotTakenForTheEnd()
    {
        using var dir = new TempDir();
        string seg;
        using (var q = new MmapQueue(dir.Path, TestOptions.Small()))
        {
            for (int i = 0; i < Count; i++) q.Enqueue(TestPayloads.For(i, Len(i)));
            seg = q.Segments[0].Path;
        }
        int offset3 = SegmentLayout.FirstRecordOffset + Enumerable.Range(0, 3).Sum(i => SegmentLayout.FrameLength(Len(i)));
        using (var fs = new FileStream(seg, FileMode.Open, FileAccess.ReadWrite)) { fs.Position = offset3; fs.Write(new byte[4]); }
        using var reopened = new MmapQueue(dir.Path, TestOptions.Small());
        using var r = reopened.OpenReader();
        for (int i = 0; i < 3; i++) Assert.True(r.TryRead(out _));
        var e = Assert.Throws<QueueCorruptedException>(() => r.TryRead(out _)); // not "caught up": the hole is before the watermark
        Assert.Equal(offset3, e.Offset);
        Assert.Contains("found a zero commit word", e.Message);
    }

    [Fact]
    public void BadSegmentHeaderNamesFileOffsetExpectedAndFound()
    {
        using var dir = new TempDir();
        string seg;
        using (var q = new MmapQueue(dir.Path, TestOptions.Small())) seg = q.Segments[0].Path;
        FlipByte(seg, 0);
        var e = Assert.Throws<QueueCorruptedException>(() => new MmapQueue(dir.Path, TestOptions.Small()));
        Assert.Equal(0, e.Offset);
        Assert.Matches(@"expected segment magic 0x3130474553514D4D, found 0x3130474553514D4C", e.Message);
    }

    [Fact]
    public void SegmentOfTheWrongLengthIsRefused()
    {
        using var dir = new TempDir();
        string seg;
        using (var q = new MmapQueue(dir.Path, TestOptions.Small())) seg = q.Segments[0].Path;
        using (var fs = new FileStream(seg, FileMode.Open)) fs.SetLength(4096);
        var e = Assert.Throws<QueueCorruptedException>(() => new MmapQueue(dir.Path, TestOptions.Small()));
        Assert.Contains("expected file length 65536 (the queue's segment size), found 4096", e.Message);
    }

    internal static void FlipByte(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        int b = fs.ReadByte();
        fs.Position = offset;
        fs.WriteByte((byte)(b ^ 0x01));
    }

    internal static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
