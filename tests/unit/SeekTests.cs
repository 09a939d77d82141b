using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

public class SeekTests
{
    private const int Records = 10 * RecordsPerSegment + 17; // ten sealed segments and part of an eleventh

    private static MmapQueue Filled(TempDir dir, int records = Records, Action<MmapQueueOptions>? change = null)
    {
        var q = new MmapQueue(dir.Path, Options(change));
        Fill(q, records);
        return q;
    }

    [Theory]
    [InlineData(0)]                                 // first
    [InlineData(Records - 1)]                       // last
    [InlineData(5 * RecordsPerSegment + 33)]        // middle of a sealed segment
    [InlineData(3 * RecordsPerSegment)]             // first record of a segment
    [InlineData(10 * RecordsPerSegment + 5)]        // inside the active segment
    public void SeekLandsExactlyOnTheRequestedSequence(long target)
    {
        using var dir = new TempDir();
        using var q = Filled(dir);
        using var r = q.OpenReader(0);
        ReadExpecting(r, 3);
        Assert.Equal(target, r.Seek(target));
        Assert.Equal(target, r.NextSequence);
        ReadExpecting(r, Math.Min(5, Records - target));
        using var opened = q.OpenReader(target);
        ReadExpecting(opened, 1);
    }

    [Fact]
    public void SeekToTheNextSequenceWaitsThereForTheNextRecord()
    {
        using var dir = new TempDir();
        using var q = Filled(dir);
        using var r = q.OpenReader(0);
        r.Seek(Records);
        Assert.False(r.TryRead(out _));
        Fill(q, 1);
        ReadExpecting(r, 1);
    }

    [Fact]
    public void SeekPastTheNextSequenceIsANotYetWrittenError()
    {
        using var dir = new TempDir();
        using var q = Filled(dir, 10);
        using var r = q.OpenReader(0);
        var e = Assert.Throws<SequenceOutOfRangeException>(() => r.Seek(11));
        Assert.True(e.NotYetWritten);
        Assert.Equal((11, 0, 10), (e.Requested, e.FirstRetained, e.NextSequence));
        Assert.StartsWith($"Sequence 11 is not written yet in queue {q.Path}: the next record gets 10 (the queue holds [0, 10)).", e.Message);
        Assert.Throws<SequenceOutOfRangeException>(() => q.OpenReader(11));
        Assert.Equal(0, r.NextSequence); // a failed seek leaves the reader where it was
        ReadExpecting(r, 1);
    }

    [Fact]
    public void SeekBelowTheFirstRetainedSequenceIsANotRetainedError()
    {
        using var dir = new TempDir();
        using var q = Filled(dir);
        using (var c = q.OpenReader("c"))
        {
            c.Seek(3 * RecordsPerSegment + 1);
            c.Commit(); // retention deletes the first three segments
        }
        Assert.Equal(3 * RecordsPerSegment, q.FirstSequence);
        using var r = q.OpenReader(q.FirstSequence);
        var e = Assert.Throws<SequenceOutOfRangeException>(() => r.Seek(5));
        Assert.False(e.NotYetWritten);
        Assert.StartsWith($"Sequence 5 is no longer retained in queue {q.Path}: retention deleted everything before {3 * RecordsPerSegment}", e.Message);
        Assert.Throws<SequenceOutOfRangeException>(() => q.OpenReader(0));
    }

    [Fact]
    public void ClampStartsAtTheNearestHeldSequence()
    {
        using var dir = new TempDir();
        using var q = Filled(dir);
        q.WaitForBackgroundWork(); // an index build still scanning a sealed segment holds it: retention would keep it for the next pass
        using (var c = q.OpenReader("c"))
        {
            c.Seek(2 * RecordsPerSegment);
            c.Commit();
        }
        using var r = q.OpenReader(0, OutOfRange.Clamp);
        Assert.Equal(2 * RecordsPerSegment, r.NextSequence);
        ReadExpecting(r, 1);
        Assert.Equal(Records, r.Seek(Records + 1000, OutOfRange.Clamp));
        Assert.False(r.TryRead(out _));
    }

    [Fact]
    public void SealedSegmentsGetAnIndexFileThatASeekAfterReopenUses()
    {
        using var dir = new TempDir();
        using (var q = Filled(dir)) { }
        string idx = Path.Combine(dir.Path, SegmentName(4 * RecordsPerSegment)[..^4] + ".idx");
        Assert.True(File.Exists(idx), "the roll should have written the index of a sealed segment");
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using var r = q.OpenReader(4 * RecordsPerSegment + 40);
            ReadExpecting(r, 2);
            var seg = q.FindSegment(4 * RecordsPerSegment)!;
            Assert.True(seg.Index!.IsHint, "the index should have come from the side file");
            Assert.True(seg.Index.EntryCount > 1);
        }
    }

    [Fact]
    public void AGarbledIndexFileIsIgnoredAndRebuilt()
    {
        using var dir = new TempDir();
        using (var q = Filled(dir)) { }
        string idx = Path.Combine(dir.Path, SegmentName(RecordsPerSegment)[..^4] + ".idx");
        File.WriteAllBytes(idx, new byte[100]);
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using var r = q.OpenReader(RecordsPerSegment + 50);
            ReadExpecting(r, 3);
        }
        Assert.NotEqual(new byte[100], File.ReadAllBytes(idx)); // rewritten from a scan
    }

    [Fact]
    public void AnIndexWithAValidChecksumButAWrongEntryIsCaughtWhereItLands()
    {
        using var dir = new TempDir();
        using (var q = Filled(dir)) { }
        long b1 = RecordsPerSegment;
        string idx = Path.Combine(dir.Path, SegmentName(b1)[..^4] + ".idx");
        var meta = Storage.QueueDirectory.ReadMeta(Path.Combine(dir.Path, "queue.meta"));
        // Well-formed and CRC-valid, but it claims record 10 sits where record 9 does.
        File.WriteAllBytes(idx, EncodeIndex(b1, meta.QueueId, RecordsPerSegment, 64 + RecordsPerSegment * 1008,
            [(0, 64), (10, 64 + 9 * 1008)]));
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using var r = q.OpenReader(b1 + 12);
            ReadExpecting(r, 3); // trusting the entry would return record 11 as 12
        }
        Assert.NotEqual(2, (File.ReadAllBytes(idx).Length - Format.IndexLayout.HeaderSize) / Format.IndexLayout.EntrySize); // rebuilt from a scan, with its real entries
    }

    private static byte[] EncodeIndex(long baseSequence, Guid queueId, long records, int end, (int Record, int Offset)[] entries)
    {
        var b = new byte[Format.IndexLayout.FileLength(entries.Length)];
        Format.IndexLayout.Write(b, new Format.IndexLayout.Contents(baseSequence, records, end, Format.IndexLayout.StepFor(SegmentSize), queueId, entries));
        return b;
    }
}
