using System.Buffers.Binary;
using MmapQueues.Crash;
using MmapQueues.Format;
using MmapQueues.Tests.Crash.Harness;

namespace MmapQueues.Tests.Crash;

/// <summary>Cases the corruption fuzzer found, pinned down one by one.</summary>
public sealed class CorruptionRegressionTests
{
    private const long SegmentBytes = 8 << 10;
    private const int MaxExtra = 120;

    /// <summary>
    /// A sealed segment is not scanned on open (its end marker and watermark vouch for it). A zeroed commit
    /// word inside it used to look like "caught up" to a reader, which then stopped for good before records
    /// that exist: now it is reported as corruption with the file and offset.
    /// </summary>
    [Fact]
    public void ZeroedCommitWordInASealedSegmentIsReportedNotTakenForTheEnd()
    {
        using var dir = new TempDir();
        List<long> tags = MakeQueue(dir.Path, 160);
        string seg0 = Path.Combine(dir.Path, "00000000000000000000.seg");
        long offset = OffsetOfRecord(tags, 10);
        PatchFile(seg0, offset, b => BinaryPrimitives.WriteUInt32LittleEndian(b, 0));

        using var q = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes });
        using var r = q.OpenReader(0);
        for (int i = 0; i < 10; i++) Assert.True(r.TryRead(out _));
        var e = Assert.Throws<QueueCorruptedException>(() => r.TryRead(out _));
        Assert.Equal(seg0, e.FilePath);
        Assert.Equal(offset, e.Offset);
        Assert.Contains("a zero commit word", e.Message);
    }

    /// <summary>
    /// Opening a reader builds the sparse index of a sealed segment by scanning its commit words, waiting
    /// for producers that reserved before the seal. In a segment that was complete on disk nobody will
    /// ever publish, so a zeroed or garbled word there used to make that wait spin forever: now it is
    /// reported as corruption.
    /// </summary>
    [Theory]
    [InlineData(0, true)]
    [InlineData(0, false)]
    [InlineData(10, false)]
    public void DamagedWordInASealedSegmentIsReportedWhenItsIndexIsBuilt(int record, bool keepIndexFile)
    {
        using var dir = new TempDir();
        List<long> tags = MakeQueue(dir.Path, 160);
        string seg0 = Path.Combine(dir.Path, "00000000000000000000.seg");
        long offset = OffsetOfRecord(tags, record);
        PatchFile(seg0, offset, b => BinaryPrimitives.WriteUInt32LittleEndian(b, 0));
        if (!keepIndexFile) foreach (string idx in Directory.GetFiles(dir.Path, "*.idx")) File.Delete(idx);

        var e = Bounded.Run(() =>
        {
            using var q = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes });
            return Assert.Throws<QueueCorruptedException>(() =>
            {
                using var r = q.OpenReader(0);
                r.Seek(tags.Count - 1); // needs the index of the first segment
                while (r.TryRead(out _)) { }
            });
        }, TimeSpan.FromSeconds(20), "opening a reader on a damaged sealed segment");
        Assert.Equal(seg0, e.FilePath);
        Assert.Equal(offset, e.Offset);
    }

    /// <summary>
    /// The durable watermark sits outside the header CRC. Damaged together with the first record (one
    /// garbled run of bytes across offset 64), it used to turn a durable segment into a "torn tail": opening
    /// truncated every record without an error. A watermark no writer can store is now corruption.
    /// </summary>
    [Theory]
    [InlineData(0UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(65UL)]
    [InlineData(1UL << 40)]
    public void ImpossibleDurableWatermarkIsReportedOnOpen(ulong watermark)
    {
        using var dir = new TempDir();
        MakeQueue(dir.Path, 160);
        string tail = Directory.GetFiles(dir.Path, "*.seg").Order(StringComparer.Ordinal).Last(); // the last segment with durable records
        PatchFile(tail, SegmentLayout.WatermarkOffset, b =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b, watermark);
            BinaryPrimitives.WriteUInt32LittleEndian(b[(SegmentLayout.FirstRecordOffset - SegmentLayout.WatermarkOffset)..], 0xDEAD_BEEF);
        });

        var e = Assert.Throws<QueueCorruptedException>(() => new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes }).Dispose());
        Assert.Equal(tail, e.FilePath);
        Assert.Equal(SegmentLayout.WatermarkOffset, e.Offset);
        Assert.Contains($"found {watermark}", e.Message);
    }

    internal static List<long> MakeQueue(string dir, int records)
    {
        var tags = new List<long>();
        byte[] buffer = new byte[TestRecord.TagBytes + MaxExtra];
        using var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async });
        for (int k = 0; k < records; k++)
        {
            long tag = TestRecord.Tag(0, 0, k);
            Span<byte> p = buffer.AsSpan(0, TestRecord.Length(tag, MaxExtra));
            TestRecord.Fill(tag, p);
            q.Enqueue(p);
            tags.Add(tag);
        }
        Assert.True(q.Segments.Length >= 2, "the test needs a sealed segment before the tail");
        return tags;
    }

    /// <summary>Byte offset of record <paramref name="index"/> in the first segment (records before it all fit there).</summary>
    private static long OffsetOfRecord(List<long> tags, int index)
    {
        long off = SegmentLayout.FirstRecordOffset;
        for (int i = 0; i < index; i++) off += SegmentLayout.FrameLength(TestRecord.Length(tags[i], MaxExtra));
        return off;
    }

    private static void PatchFile(string path, long offset, SpanAction patch)
    {
        byte[] bytes = File.ReadAllBytes(path);
        patch(bytes.AsSpan((int)offset));
        File.WriteAllBytes(path, bytes);
    }

    private delegate void SpanAction(Span<byte> bytes);
}
