using MmapQueues.Format;
using MmapQueues.Native;
using MmapQueues.Storage;
using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

/// <summary><see cref="MmapQueueOptions.RecycleSegments"/>: freed segments become the next spare, and no previous lap is ever read.</summary>
public class RecycleTests
{
    private const int R = RecordsPerSegment;

    /// <summary>The inode of a file (statx, no link followed).</summary>
    private static ulong Inode(string path)
    {
        Span<byte> buffer = stackalloc byte[Libc.StatxSize];
        Assert.Equal(0, Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, 0x100 /* STATX_INO */, buffer));
        return BitConverter.ToUInt64(buffer[32..40]); // stx_ino
    }

    /// <summary>The inodes of the segment files and spares (index side files and the cursors file come and go on their own).</summary>
    private static HashSet<ulong> InodesIn(string dir) =>
        Directory.GetFiles(dir, "*.seg").Concat(Directory.GetFiles(dir, "next.seg.*.tmp")).Select(Inode).ToHashSet();

    /// <summary>Lets a named consumer read everything so far and commit: retention frees every segment before the active one.</summary>
    private static void ConsumeAll(MmapQueue q)
    {
        using var c = q.OpenReader("c");
        c.Seek(q.NextSequence);
        c.Commit();
        q.WaitForBackgroundWork(); // the retention pass and the recycled spare's cleaning
    }

    [Fact]
    public void AConsumedSegmentIsReusedUnderTheNextNameAndNoNewFileIsCreated()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Fill(q, 3 * R + 5); // segments 0, R, 2R, 3R (active), and a fresh spare
        ulong first = Inode(Path.Combine(dir.Path, SegmentName(0)));
        ConsumeAll(q);
        Assert.Equal([SegmentName(3 * R)], SegmentFileNames(dir.Path));
        HashSet<ulong> before = InodesIn(dir.Path);
        Assert.Contains(first, before); // segment 0 lives on as a spare (next.seg.*.tmp); 1 and 2 were deleted

        Fill(q, R); // rolls once, into the recycled spare
        long nextBase = q.Segments[^1].BaseSequence;
        Assert.Equal(first, Inode(Path.Combine(dir.Path, SegmentName(nextBase))));
        Assert.Subset(before, InodesIn(dir.Path)); // no file was created for the roll

        using var r = q.OpenReader(nextBase);
        ReadExpecting(r, q.NextSequence - nextBase); // only this lap's records
        Assert.False(r.TryRead(out _), "the reader must stop at the tail, not read on into the previous lap's frames");
    }

    [Fact]
    public async Task AReaderWaitingOnARecycledTailNeverSeesThePreviousLapsFrames()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        byte[] lap1 = Enumerable.Repeat((byte)0xAB, PayloadSize).ToArray();
        for (int i = 0; i < 2 * R + 1; i++) q.Enqueue(lap1); // segment 0 full of a pattern
        q.WaitForBackgroundWork();
        ulong first = Inode(Path.Combine(dir.Path, SegmentName(0)));
        ConsumeAll(q);
        while (q.Segments[^1].BaseSequence < 3 * R) q.Enqueue(Payload(q.NextSequence)); // rolls into the recycled segment 0
        Segment active = q.Segments[^1];
        Assert.Equal(first, Inode(active.Path));
        Assert.True(ZeroFrom(active, active.ReservedTail.End), "the recycled segment must be zero past its records before anyone reads it");

        using var r = q.OpenReader(q.NextSequence);
        Assert.False(r.TryRead(out _)); // at the tail: nothing yet, not a stale frame
        var waiting = r.WaitToReadAsync().AsTask();
        long seq = q.Enqueue(Payload(q.NextSequence));
        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(r.TryRead(out var p) && p.SequenceEqual(Payload(seq)));
        Assert.False(r.TryRead(out _));
    }

    [Fact]
    public void AReaderStillOnAnOldSegmentKeepsItFromBeingRecycled()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Fill(q, 3 * R + 5);
        using var anonymous = q.OpenReader(3); // on segment 0
        Assert.True(anonymous.TryRead(out var view));
        ConsumeAll(q);
        Assert.Equal(Names(0, R, 2 * R, 3 * R), SegmentFileNames(dir.Path)); // the prefix rule: nothing before the reader goes
        Fill(q, 2 * R); // rolls: none may take segment 0's file
        Assert.True(File.Exists(Path.Combine(dir.Path, SegmentName(0))));
        Assert.True(view.SequenceEqual(Payload(3)), "a live view must keep its bytes through recycling");
        ReadExpecting(anonymous, R); // reads on into segment 1, letting go of segment 0
        q.ApplyRetention();
        q.WaitForBackgroundWork(); // the spare is renamed in the background
        Assert.False(File.Exists(Path.Combine(dir.Path, SegmentName(0))));
    }

    [Fact]
    public void RecoveryTruncatesAPreviousLapsFramesLeftPastTheWatermarkByAPowerCut()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, Options());
        Fill(q, 2 * R + 1);
        byte[] lap1 = File.ReadAllBytes(Path.Combine(dir.Path, SegmentName(0))); // what the disk may still hold after the cut
        ConsumeAll(q);
        while (q.Segments[^1].BaseSequence < 2 * R + R) q.Enqueue(Payload(q.NextSequence));
        Segment active = q.Segments[^1];
        Fill(q, 5);
        q.Flush();
        long next = q.NextSequence;
        int end = active.ReservedTail.End;
        string path = active.Path;
        q.SimulateCrash();
        // The cut lost the in-memory zeros: from the end of this lap's records on, the previous lap's frames are
        // back, at the very offsets this lap uses (same record size), valid in every way but their sequence.
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = end;
            fs.Write(lap1.AsSpan(end));
        }

        var log = new CapturingLoggerFactory();
        using (var reopened = new MmapQueue(dir.Path, Options(), log))
        {
            Assert.Equal(next, reopened.NextSequence);
            Assert.Equal(1, log.Count(1002)); // TornTailTruncated
            Assert.Equal(next, ReadAllAndCheck(reopened, reopened.FirstSequence, _ => PayloadSize));
        }
        byte[] after = File.ReadAllBytes(path);
        Assert.True(after.AsSpan(end).IndexOfAnyExcept((byte)0) < 0, "recovery must zero the previous lap's frames, not only skip them");
    }

    [Fact]
    public void ClosingARecycledActiveSegmentMakesItsTailZeroOnDisk()
    {
        using var dir = new TempDir();
        Segment active;
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Fill(q, 2 * R + 1);
            ConsumeAll(q);
            while (q.Segments[^1].BaseSequence < 3 * R) q.Enqueue(Payload(q.NextSequence));
            active = q.Segments[^1];
            Assert.False(active.TailZeroOnDisk, "a recycled segment's zeros are only in memory until close");
        }
        Assert.True(active.TailZeroOnDisk);
        byte[] file = File.ReadAllBytes(active.Path);
        Assert.True(file.AsSpan(SegmentLayout.FirstRecordOffset + SegmentLayout.FrameLength(PayloadSize)).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void WithRecycleSegmentsOffFreedSegmentsAreDeletedAndRollsUseNewFiles()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(o => o.RecycleSegments = false));
        Fill(q, 3 * R + 5);
        ulong first = Inode(Path.Combine(dir.Path, SegmentName(0)));
        ConsumeAll(q);
        Assert.DoesNotContain(first, InodesIn(dir.Path));
        Assert.Single(Directory.GetFiles(dir.Path, "next.seg.*.tmp")); // the one fresh spare, as before
        HashSet<ulong> before = InodesIn(dir.Path);
        Fill(q, R);
        Assert.NotEmpty(InodesIn(dir.Path).Except(before)); // the roll's next spare is a new file
    }

    [Fact]
    public void AFullQueueAppendsAgainOnceConsumersFreeSegmentsIntoSpares()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(o =>
        {
            o.MaxQueueSizeBytes = 3 * SegmentSize;
            o.FullPolicy = QueueFullPolicy.Reject;
        }));
        using var c = q.OpenReader("c");
        for (int lap = 0; lap < 6; lap++)
        {
            long appended = 0;
            while (q.TryEnqueue(Payload(q.NextSequence), out _)) appended++; // up to the limit
            Assert.True(appended >= (lap == 0 ? 3 * R : 2 * R), $"lap {lap}: only {appended} records fitted");
            Assert.Equal(3, SegmentFileNames(dir.Path).Length);
            ReadExpecting(c, q.NextSequence - c.NextSequence);
            q.WaitForBackgroundWork(); // index builds hold the sealed segments for a moment
            c.Commit(); // frees the two sealed segments: one becomes a spare, the other is deleted
            q.WaitForBackgroundWork();
            Assert.Single(SegmentFileNames(dir.Path));
            Assert.InRange(Directory.GetFiles(dir.Path, "next.seg.*.tmp").Length, 1, SegmentAllocator.MaxSpares);
        }
    }

    [Fact]
    public void AnInspectorReadingASegmentThatIsRecycledReportsItGoneNotCorrupt()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(o => o.SegmentSizeBytes = 1 << 20)); // more than the inspector's first read
        Fill(q, 2 * ((1 << 20) / SegmentLayout.FrameLength(PayloadSize)) + 1);
        QueueInspector inspector = QueueInspector.Open(dir.Path);
        InspectedSegment first = inspector.ListSegments()[0];
        var e = Assert.Throws<FileNotFoundException>(() => inspector.Scan(first, (in InspectedRecord r) =>
        {
            if (r.Sequence == 0) ConsumeAll(q); // recycled (renamed, zeroed) while the scan holds the file open
            return true;
        }));
        Assert.Contains("recycled", e.Message);
    }

    [Fact]
    public void DisposeWhileFreedSegmentsAreBeingRecycledLeavesNoSpareBehindAndReopens()
    {
        using var dir = new TempDir();
        const long Segment8M = 8 << 20; // long enough to clean that Dispose often meets a cleaning under way
        long perSegment = (Segment8M - SegmentLayout.FirstRecordOffset) / SegmentLayout.FrameLength(PayloadSize);
        long next;
        using (var q = new MmapQueue(dir.Path, Options(o => o.SegmentSizeBytes = Segment8M)))
        {
            Fill(q, 3 * perSegment + 1);
            using var c = q.OpenReader("c");
            c.Seek(q.NextSequence);
            c.Commit(); // frees three segments into spares; Dispose follows at once
            next = q.NextSequence;
        }
        Assert.Empty(Directory.GetFiles(dir.Path, "next.seg.*.tmp"));
        Assert.Equal([SegmentName(3 * perSegment)], SegmentFileNames(dir.Path));
        using var reopened = new MmapQueue(dir.Path, Options(o => o.SegmentSizeBytes = Segment8M));
        Assert.Equal(next, reopened.NextSequence);
        Assert.Equal(next, ReadAllAndCheck(reopened, reopened.FirstSequence, _ => PayloadSize));
    }

    [Fact]
    public void ConsumedSegmentsAreRecycledWithoutWaitingForTheFlusherAndTheNextFlushGoesOnFromTheFirstKept()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, Options()); // Async: nothing is flushed until asked
        Fill(q, 3 * R + 5);
        Assert.Equal(0, q.DurableSequence);
        ConsumeAll(q);
        Assert.Equal(0, q.DurableSequence); // freed without a flush: the consumers are past them, the floor covers them
        Assert.Equal(3 * R, q.FirstSequence);
        Fill(q, R); // a roll into a recycled segment
        q.Flush(); // the frontier's segment is gone: the walk goes on from the first kept one
        Assert.Equal(q.NextSequence, q.DurableSequence);
        long next = q.NextSequence;
        q.SimulateCrash();
        using var reopened = new MmapQueue(dir.Path, Options());
        Assert.Equal(3 * R, reopened.FirstSequence);
        Assert.Equal(next, reopened.NextSequence);
        Assert.Equal(next, ReadAllAndCheck(reopened, reopened.FirstSequence, _ => PayloadSize));
    }

    [Fact]
    public void WithRecycleSegmentsOffRetentionStillFlushesBeforeItDeletes()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(o => o.RecycleSegments = false));
        Fill(q, 3 * R + 5);
        ConsumeAll(q);
        Assert.Equal(3 * R, q.FirstSequence);
        Assert.True(q.DurableSequence >= 3 * R, $"the deleted segments were flushed first; durable only below {q.DurableSequence}");
    }

    [Fact]
    public void ARecentlySealedSegmentIsRecycledWithTheMappingItWasWrittenThrough()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Fill(q, 3 * R + 5); // sealed: 0, R, 2R; the last two keep their mappings when idle
            Assert.False(q.Segments[0].IsMapped, "only the last sealed segments keep an idle mapping");
            Assert.True(q.Segments[1].IsMapped && q.Segments[2].IsMapped);
            Native.MappedRegion kept = q.Segments[1].Region;
            ConsumeAll(q); // 0 and R become spares (R with its mapping), 2R is deleted (and unmapped)
            Fill(q, 2 * R); // two rolls: into 0 (mapped again) and R (never unmapped)
            Assert.Contains(q.Segments, s => s.IsMapped && ReferenceEquals(s.Region, kept));
            Assert.Equal(q.NextSequence, ReadAllAndCheck(q, q.FirstSequence, _ => PayloadSize));
        }
        Assert.Equal(0, MappingsUnder(dir.Path)); // Dispose lets go of every kept mapping
    }

    private static bool ZeroFrom(Segment s, int offset) => s.Bytes[offset..].IndexOfAnyExcept((byte)0) < 0;

    private static string[] Names(params long[] bases) => bases.Select(SegmentName).ToArray();
}
