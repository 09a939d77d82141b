using System.Buffers.Binary;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MmapQueues.Format;

namespace MmapQueues.Tests;

/// <summary>
/// Pins the segment header as drawn in Format/SegmentLayout.cs: its size, every field's offset, no two fields
/// overlapping, and little-endian bytes whatever the host. A change here is a format change (see GoldenFileTests).
/// </summary>
public class FormatLayoutTests
{
    /// <summary>The header as drawn: field, offset, width.</summary>
    public static TheoryData<string, int, int> DrawnHeaderFields => new()
    {
        { nameof(SegmentHeader.Magic), 0, 8 },
        { nameof(SegmentHeader.Version), 8, 4 },
        { nameof(SegmentHeader.HeaderSize), 12, 4 },
        { nameof(SegmentHeader.SegmentSize), 16, 8 },
        { nameof(SegmentHeader.BaseSequence), 24, 8 },
        { nameof(SegmentHeader.QueueId), 32, 16 },
        { nameof(SegmentHeader.HeaderCrc), 48, 4 },
        { nameof(SegmentHeader.State), 52, 4 },
        { nameof(SegmentHeader.Watermark), 56, 8 },
    };

    private static FieldInfo[] HeaderFields =>
        typeof(SegmentHeader).GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance);

    [Fact]
    public void TheHeaderStructIsExactlyTheHeaderSize()
    {
        Assert.Equal(SegmentLayout.HeaderSize, Unsafe.SizeOf<SegmentHeader>());
        Assert.Equal(SegmentLayout.HeaderSize, Marshal.SizeOf<SegmentHeader>());
        Assert.Equal(SegmentLayout.HeaderSize, SegmentLayout.FirstRecordOffset);
    }

    [Fact]
    public void HeaderFieldsTileTheHeaderWithoutOverlapOrGap()
    {
        var fields = HeaderFields
            .Select(f => (f.Name, Offset: (int)Marshal.OffsetOf<SegmentHeader>(f.Name), Size: Marshal.SizeOf(f.FieldType)))
            .OrderBy(f => f.Offset)
            .ToList();
        Assert.Equal(DrawnHeaderFields.Count(), fields.Count);
        int end = 0;
        foreach (var (name, offset, size) in fields)
        {
            Assert.True(offset == end, $"{name} starts at {offset}, expected {end} (right after the previous field)");
            end = offset + size;
        }
        Assert.Equal(Unsafe.SizeOf<SegmentHeader>(), end);
    }

    [Theory]
    [MemberData(nameof(DrawnHeaderFields))]
    public void EveryHeaderFieldSitsAtItsDrawnOffset(string field, int offset, int width)
    {
        Assert.Equal(offset, (int)Marshal.OffsetOf<SegmentHeader>(field));
        Assert.Equal(width, Marshal.SizeOf(typeof(SegmentHeader).GetField(field)!.FieldType));
        int named = (int)typeof(SegmentLayout).GetField(field + "Offset")!.GetRawConstantValue()!;
        Assert.Equal(offset, named);
    }

    [Fact]
    public void TheHeaderIsWrittenLittleEndianAtTheNamedOffsets()
    {
        var id = new Guid("00112233-4455-6677-8899-aabbccddeeff");
        var h = SegmentHeader.Create(segmentSize: 0x0000_0102_0304_0000, baseSequence: 0x1122_3344_5566_7788, id);
        h.Watermark = SegmentHeader.PackWatermark(0x0A0B_0C08, 0x0102_0304);
        h.State = SegmentHeader.CleanCloseState(h.Watermark);
        var bytes = new byte[SegmentLayout.HeaderSize + 8];
        h.Write(bytes);

        Assert.Equal("MMQSEG01"u8.ToArray(), bytes[..8]);
        Assert.Equal(new byte[] { 2, 0, 0, 0 }, bytes[8..12]);
        Assert.Equal(new byte[] { 64, 0, 0, 0 }, bytes[12..16]);
        Assert.Equal(new byte[] { 0x00, 0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00 }, bytes[16..24]);
        Assert.Equal(new byte[] { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }, bytes[24..32]);
        Assert.Equal(new byte[] { 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff }, bytes[32..48]);
        uint crc = Crc32C.Compute(bytes.AsSpan(0, 48));
        Assert.Equal(new[] { (byte)crc, (byte)(crc >> 8), (byte)(crc >> 16), (byte)(crc >> 24) }, bytes[48..52]);
        uint check = Crc32C.Compute(bytes.AsSpan(56, 8)) << 8;
        Assert.Equal(new[] { (byte)1, (byte)(check >> 8), (byte)(check >> 16), (byte)(check >> 24) }, bytes[52..56]); // CLEAN_CLOSE, the watermark's check
        Assert.Equal(new byte[] { 0x08, 0x0C, 0x0B, 0x0A, 0x04, 0x03, 0x02, 0x01 }, bytes[56..64]); // durableEnd, then durableRecords
        Assert.Equal(new byte[8], bytes[64..]); // nothing written past the header

        SegmentHeader back = SegmentHeader.Read(bytes);
        Assert.Equal(h, back);
        Assert.Equal(0x0A0B_0C08L, SegmentHeader.ReadDurableEnd(bytes));
        Assert.Equal(0x0102_0304L, back.DurableRecords);
        Assert.True(back.CleanClose);
        Assert.Null(back.Check(0x1122_3344_5566_7788, 0x0000_0102_0304_0000, id));
    }

    [Fact]
    public void AVersion1HeaderKeepsItsWholeWatermarkAsDurableEndAndHasNoState()
    {
        var id = Guid.NewGuid();
        var h = SegmentHeader.Create(1 << 20, 7, id);
        h.Version = SegmentLayout.FormatVersion1;
        h.HeaderCrc = h.ComputeCrc();
        var bytes = new byte[SegmentLayout.HeaderSize];
        h.Write(bytes);
        SegmentHeader.WriteWatermark(bytes, 4096, 12);
        SegmentHeader.WriteCleanClose(bytes, clean: true);
        Assert.Equal(new byte[] { 0, 0x10, 0, 0, 0, 0, 0, 0 }, bytes[56..64]); // u64 durableEnd, no record count
        Assert.Equal(new byte[4], bytes[52..56]); // v1 has no state word: left as it is
        SegmentHeader back = SegmentHeader.Read(bytes);
        Assert.Equal(4096, back.DurableEnd);
        Assert.Null(back.DurableRecords);
        Assert.False(back.CleanClose);
        Assert.Null(back.Check(7, 1 << 20, id));
    }

    [Fact]
    public void AVersion2WatermarkIsStoredAsOnePackedWord()
    {
        var bytes = new byte[SegmentLayout.HeaderSize];
        SegmentHeader.Create(1 << 20, 7, Guid.NewGuid()).Write(bytes);
        SegmentHeader.WriteWatermark(bytes, 4096, 12);
        Assert.Equal(4096UL | (12UL << 32), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(SegmentLayout.WatermarkOffset)));
    }

    [Fact]
    public void AHeaderFieldThatDoesNotMatchIsReportedWithItsOffset()
    {
        var id = Guid.NewGuid();
        var h = SegmentHeader.Create(4096, 100, id);
        Assert.Null(h.Check(100, 4096, id));
        Assert.Equal(new FieldProblem(SegmentLayout.BaseSequenceOffset, "base sequence 200 (from the file name)", "100"), h.Check(200, 4096, id));
        Assert.Equal(SegmentLayout.SegmentSizeOffset, h.Check(100, 8192, id)!.Value.Offset);
        Assert.Equal(SegmentLayout.QueueIdOffset, h.Check(100, 4096, Guid.NewGuid())!.Value.Offset);
        h.Version = 3;
        Assert.Equal(new FieldProblem(SegmentLayout.VersionOffset, "format version 1 or 2", "3"), h.Check(100, 4096, id));
    }

    [Theory]
    [InlineData(2u, 0UL)]                         // durableEnd 0
    [InlineData(2u, 65UL)]                        // not 8-byte aligned
    [InlineData(2u, 8192UL)]                      // past the segment
    [InlineData(2u, 128UL | (9UL << 32))]         // 9 records in 64 bytes: a frame is at least 8
    [InlineData(1u, 1UL << 40)]                   // v1: the whole word is durableEnd
    public void ADamagedWatermarkIsReportedWithOffsetExpectedAndFound(uint version, ulong watermark)
    {
        var id = Guid.NewGuid();
        var h = SegmentHeader.Create(4096, 100, id);
        h.Version = version;
        h.HeaderCrc = h.ComputeCrc();
        h.Watermark = watermark; // outside the CRC
        FieldProblem p = h.Check(100, 4096, id)!.Value;
        Assert.Equal(SegmentLayout.WatermarkOffset, p.Offset);
        Assert.Contains("a durable watermark", p.Expected);
        Assert.StartsWith($"{watermark}", p.Found);
    }

    [Fact]
    public void ADamagedStateWordIsReportedWithOffsetExpectedAndFound()
    {
        var id = Guid.NewGuid();
        var h = SegmentHeader.Create(4096, 100, id);
        h.State = 0x8000_0001; // outside the CRC
        FieldProblem p = h.Check(100, 4096, id)!.Value;
        Assert.Equal((SegmentLayout.StateOffset, "0x80000001"), (p.Offset, p.Found));
        Assert.StartsWith("a state word 0, or CLEAN_CLOSE with the check of watermark 64", p.Expected);
    }

    [Fact]
    public void AWatermarkChangedUnderCleanCloseFailsItsCheck()
    {
        var id = Guid.NewGuid();
        var bytes = new byte[SegmentLayout.HeaderSize];
        SegmentHeader.Create(4096, 100, id).Write(bytes);
        SegmentHeader.WriteWatermark(bytes, 512, 3);
        SegmentHeader.WriteCleanClose(bytes, clean: true);
        Assert.Null(SegmentHeader.Read(bytes).Check(100, 4096, id));
        SegmentHeader.WriteWatermark(bytes, 256, 3); // one damaged byte of the watermark, still a possible one
        FieldProblem p = SegmentHeader.Read(bytes).Check(100, 4096, id)!.Value;
        Assert.Equal(SegmentLayout.StateOffset, p.Offset);
        Assert.Contains("the state or the watermark is damaged", p.Expected);
        SegmentHeader.WriteCleanClose(bytes, clean: false);
        Assert.Null(SegmentHeader.Read(bytes).Check(100, 4096, id));
    }

    [Fact]
    public void QueueMetaRoundTripsAndNamesTheBadField()
    {
        var id = Guid.NewGuid();
        var b = new byte[MetaLayout.Length];
        MetaLayout.Write(b, 1 << 20, id);
        Assert.Equal(44, MetaLayout.Length);
        Assert.Equal("MMQMETA1"u8.ToArray(), b[..8]);
        Assert.True(MetaLayout.TryRead(b, out long size, out Guid back, out _));
        Assert.Equal((1L << 20, id), (size, back));

        b[MetaLayout.SegmentSizeOffset] ^= 1;
        Assert.False(MetaLayout.TryRead(b, out _, out _, out FieldProblem p));
        Assert.Equal(MetaLayout.CrcOffset, p.Offset);
        Assert.False(MetaLayout.TryRead(b.AsSpan(0, 40), out _, out _, out p));
        Assert.Equal(new FieldProblem(0, "44 bytes", "40 bytes"), p);
    }

    [Fact]
    public void AnIndexFileRoundTripsAndIsRefusedForAnotherSegment()
    {
        var id = Guid.NewGuid();
        int step = IndexLayout.StepFor(1 << 20);
        var contents = new IndexLayout.Contents(500, 3000, 900_000, step, id, [(0, 64), (40, step + 8), (80, 2 * step)]);
        var b = new byte[IndexLayout.FileLength(contents.Entries.Count)];
        IndexLayout.Write(b, contents);
        Assert.Equal(3, BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(IndexLayout.EntryCountOffset)));
        Assert.True(IndexLayout.TryRead(b, 500, 1 << 20, id, out IndexLayout.Contents back, out string problem), problem);
        Assert.Equal((contents.RecordCount, contents.EndOffset, contents.Step), (back.RecordCount, back.EndOffset, back.Step));
        Assert.Equal(contents.Entries, back.Entries);
        Assert.False(IndexLayout.TryRead(b, 501, 1 << 20, id, out _, out problem));
        Assert.Equal("another base sequence", problem);
    }
}
