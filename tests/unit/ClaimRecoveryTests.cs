using System.Buffers.Binary;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests;

/// <summary>
/// Recovery after a kill with an unfinished frame in the middle of the tail: files crafted from a queue's tail
/// after records (written, then stopped as a kill stops, then one frame's header rewritten).
/// </summary>
public class ClaimRecoveryTests
{
    private const int Count = 12, Victim = 5;
    private static int Len(long seq) => 30 + 7 * (int)seq;

    /// <summary>Writes <see cref="Count"/> records, stops as a kill does; returns the segment and the victim's offset.</summary>
    private static (string Segment, int Offset) WriteAndCrash(string dir, Action<MmapQueueOptions>? change = null)
    {
        var q = new MmapQueue(dir, TestOptions.Small(change: change));
        int offset = SegmentLayout.FirstRecordOffset, victimAt = 0;
        for (int i = 0; i < Count; i++)
        {
            if (i == Victim) victimAt = offset;
            q.Enqueue(TestPayloads.For(i, Len(i)));
            offset += SegmentLayout.FrameLength(Len(i));
        }
        string segment = q.Segments[0].Path;
        q.SimulateCrash();
        return (segment, victimAt);
    }

    private static void Patch(string file, int offset, ReadOnlySpan<byte> bytes)
    {
        using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.Write(handle, bytes, offset);
    }

    private static byte[] ClaimHeader(long sequence, int length, long crcSequence)
    {
        var header = new byte[SegmentLayout.RecordHeaderSize];
        uint word = SegmentLayout.ClaimedWord(length);
        BinaryPrimitives.WriteUInt32LittleEndian(header, word);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), SegmentLayout.ClaimCrc(crcSequence, word));
        return header;
    }

    /// <summary>Every record but the victim reads back with its payload; the victim is skipped (aborted).</summary>
    private static void AssertAllButVictimSurvive(string dir, CapturingLoggerFactory logs)
    {
        using var q = new MmapQueue(dir, TestOptions.Small(), logs);
        Assert.Equal(Count, q.NextSequence);
        using var r = q.OpenReader();
        var seen = new List<long>();
        while (r.TryRead(out var p))
        {
            long seq = r.NextSequence - 1;
            Assert.True(TestPayloads.Matches(p, seq, Len(seq)), $"payload of {seq} differs");
            seen.Add(seq);
        }
        Assert.Equal(Enumerable.Range(0, Count).Where(i => i != Victim).Select(i => (long)i), seen);
        Assert.Single(logs.WithId(1009));
        Assert.Empty(logs.WithId(1002)); // nothing truncated
    }

    [Fact]
    public void AnUnfinishedClaimPastTheWatermarkBecomesAnAbortedRecordAndEveryLaterRecordSurvives()
    {
        using var dir = new TempDir();
        var (segment, at) = WriteAndCrash(dir.Path);
        Patch(segment, at, ClaimHeader(Victim, Len(Victim), Victim)); // the payload stays half-written (here: whole)
        using var logs = new CapturingLoggerFactory();
        AssertAllButVictimSurvive(dir.Path, logs);
        Assert.Contains($"sequence {Victim}", logs.WithId(1009).Single().Message);
    }

    [Fact]
    public void AReservationWhoseClaimWasNeverStoredIsFoundByTheNextRecordAndAborted()
    {
        using var dir = new TempDir();
        var (segment, at) = WriteAndCrash(dir.Path);
        Patch(segment, at, new byte[SegmentLayout.FrameLength(Len(Victim))]); // the CAS won, nothing was written
        using var logs = new CapturingLoggerFactory();
        AssertAllButVictimSurvive(dir.Path, logs);
        Assert.Contains($"before a frame for sequence {Victim + 1}", logs.WithId(1009).Single().Message);
    }

    [Fact]
    public void AClaimWhoseClaimCrcFailsIsATornRemnantAndTheTailIsTruncatedThere()
    {
        using var dir = new TempDir();
        var (segment, at) = WriteAndCrash(dir.Path);
        Patch(segment, at, ClaimHeader(Victim, Len(Victim), crcSequence: Victim + 100));
        using var logs = new CapturingLoggerFactory();
        using var q = new MmapQueue(dir.Path, TestOptions.Small(), logs);
        Assert.Equal(Victim, q.NextSequence);
        Assert.Single(logs.WithId(1002));
    }

    [Fact]
    public void AZeroWordFollowedByBytesThatAreNoFrameForTheNextSequenceIsATornRemnant()
    {
        using var dir = new TempDir();
        var (segment, at) = WriteAndCrash(dir.Path);
        Patch(segment, at, new byte[SegmentLayout.RecordHeaderSize]); // the victim's header gone, its payload left
        int next = at + SegmentLayout.FrameLength(Len(Victim));
        Patch(segment, next + 4, [1, 2, 3, 4]); // and the next record's CRC damaged: nothing validates for Victim + 1
        using var logs = new CapturingLoggerFactory();
        using var q = new MmapQueue(dir.Path, TestOptions.Small(), logs);
        Assert.Equal(Victim, q.NextSequence);
        Assert.Single(logs.WithId(1002));
        Assert.Empty(logs.WithId(1009));
    }

    [Fact]
    public void AClaimBeforeTheDurableWatermarkIsCorruptionNamingFileOffsetAndTheClaim()
    {
        using var dir = new TempDir();
        // 4 KiB records past 1 MiB, one flush: the header's watermark moves past the first records.
        var q = new MmapQueue(dir.Path, TestOptions.Small(segmentSize: 4 << 20));
        for (int i = 0; i < 300; i++) q.Enqueue(TestPayloads.For(i, 4000));
        q.Flush();
        string segment = q.Segments[0].Path;
        q.SimulateCrash();
        var header = new byte[SegmentLayout.HeaderSize];
        using (var h = File.OpenHandle(segment)) RandomAccess.Read(h, header, 0);
        Assert.True((uint)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(56)) > SegmentLayout.FirstRecordOffset, "the watermark did not move");

        Patch(segment, SegmentLayout.FirstRecordOffset, ClaimHeader(0, 4000, 0));
        // Opening does not walk the durable prefix of a v2 tail (it starts at the watermark): the first reader to
        // reach the claim reports it, naming the file, the offset and what it found.
        using var reopened = new MmapQueue(dir.Path, TestOptions.Small(segmentSize: 4 << 20));
        using var reader = reopened.OpenReader(0);
        var e = Assert.Throws<QueueCorruptedException>(() => reader.TryRead(out _));
        Assert.Equal(segment, e.FilePath);
        Assert.Equal(SegmentLayout.FirstRecordOffset, e.Offset);
        Assert.Contains("expected a record or the end marker", e.Message);
        Assert.Contains("a claim in progress (commit word 0x40000FA0)", e.Message);
    }

    [Fact]
    public void TheInspectorReportsAClaimInProgressAndStopsThere()
    {
        using var dir = new TempDir();
        var (segment, at) = WriteAndCrash(dir.Path);
        Patch(segment, at, ClaimHeader(Victim, Len(Victim), Victim));
        var inspector = QueueInspector.Open(dir.Path);
        SegmentScan scan = inspector.Scan(inspector.ListSegments()[0]);
        Assert.Equal(SegmentEnding.Claim, scan.Ending);
        Assert.Equal(Victim, scan.Records);
        Assert.Equal($"claim in progress at offset {at} (length {Len(Victim)})", scan.Problem!.Value.Found);
    }

    [Fact]
    public void VerifyAgreesWithOpenOnAClaimLeftInASealedSegmentPastTheDurableData()
    {
        // A kill after a roll with a callback's claim still open in the older segment: nothing was flushed, so the
        // claim lies past every durable byte; open turns it into an aborted record and keeps the rest, and verify
        // must not call it corruption (it did, holding every segment but the last to its whole length).
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, TestOptions.Small());
        const int length = 1000, victim = 5;
        for (int i = 0; i < 100; i++) q.Enqueue(TestPayloads.For(i, length));
        Assert.True(q.Segments.Length >= 2, "the records should span a roll");
        string first = q.Segments[0].Path;
        q.SimulateCrash();
        Patch(first, SegmentLayout.FirstRecordOffset + victim * SegmentLayout.FrameLength(length), ClaimHeader(victim, length, victim));

        var report = QueueInspector.Open(dir.Path).Verify();
        Assert.DoesNotContain(report.Findings, f => f.IsError);
        Assert.Contains(report.Findings, f => f.Message.Contains("claim in progress", StringComparison.Ordinal));

        using var reopened = new MmapQueue(dir.Path, TestOptions.Small());
        using var r = reopened.OpenReader();
        int n = 0;
        while (r.TryRead(out _)) n++;
        Assert.Equal(99, n); // the claim reads as aborted, every other record stays
    }
}
