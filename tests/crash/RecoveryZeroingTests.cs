using MmapQueues.Format;
using MmapQueues.Tests.Crash.Harness;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// Recovery zeroes the torn tail it truncates. Otherwise the valid records that lay behind the tear would
/// still sit on disk, and once new records of the same sizes were written over the start of the old tail,
/// a second crash would bring the old ones back at the right offsets with the right sequences (their CRCs
/// still match): resurrected records the writer never appended after recovery.
/// </summary>
public sealed class RecoveryZeroingTests
{
    private const long SegmentBytes = 64 << 10;
    private const int Durable = 50, Unflushed = 30, AfterRecovery = 10, Length = 100;

    [Fact]
    public void SecondCrashAfterRecoveryCannotResurrectTruncatedRecords()
    {
        using var root = new TempDir();
        string live = Path.Combine(root.Path, "live"), crash1 = Path.Combine(root.Path, "crash1"), crash2 = Path.Combine(root.Path, "crash2");
        var options = new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async };
        using (var q = new MmapQueue(live, options))
        {
            for (int i = 0; i < Durable; i++) q.Enqueue(Payload(0x11));
            q.Flush();
            for (int i = 0; i < Unflushed; i++) q.Enqueue(Payload(0xAA));
            CorruptionTests.CopyDirectory(live, crash1); // first crash: what the page cache held at a kill
        }

        // The first record past the flush is torn: its payload never fully reached the disk.
        string seg = Path.Combine(crash1, "00000000000000000000.seg");
        byte[] bytes = File.ReadAllBytes(seg);
        // Located from the layout, not by searching for 0xAA: a random queue id or a CRC may hold that byte.
        int tornRecordPayload = SegmentLayout.FirstRecordOffset + Durable * SegmentLayout.FrameLength(Length) + SegmentLayout.RecordHeaderSize;
        Assert.Equal(0xAA, bytes[tornRecordPayload]);
        bytes[tornRecordPayload + 5] ^= 0xFF;
        File.WriteAllBytes(seg, bytes);

        var log = new CapturingLoggerFactory();
        using (var q = new MmapQueue(crash1, options, log))
        {
            Assert.Equal(Durable, q.NextSequence);
            Assert.Equal(1, log.Count(RecoveryEvents.TornTailTruncated));
            for (int i = 0; i < AfterRecovery; i++) q.Enqueue(Payload(0xBB)); // same sizes: lands exactly on the old frames
            CorruptionTests.CopyDirectory(crash1, crash2); // second crash, nothing flushed
        }

        using (var q = new MmapQueue(crash2, options))
        using (var r = q.OpenReader(0))
        {
            Assert.Equal(Durable + AfterRecovery, q.NextSequence);
            var seen = new List<byte>();
            while (r.TryRead(out ReadOnlySpan<byte> p)) seen.Add(p[0]);
            Assert.Equal(Enumerable.Repeat((byte)0x11, Durable).Concat(Enumerable.Repeat((byte)0xBB, AfterRecovery)), seen);
        }
    }

    private static byte[] Payload(byte fill) => Enumerable.Repeat(fill, Length).ToArray();
}
