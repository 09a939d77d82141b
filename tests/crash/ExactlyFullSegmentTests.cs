using MmapQueues.Format;
using MmapQueues.Tests.Crash.Harness;

namespace MmapQueues.Tests.Crash;

/// <summary>A segment filled to its last byte has no end marker; recovery must still store a watermark inside it.</summary>
public sealed class ExactlyFullSegmentTests
{
    private const long SegmentBytes = 8 << 10;

    /// <summary>
    /// Recovering an exactly full segment after a kill used to store durableEnd = size + 8 (room for a marker
    /// that is not there). The next open then rejected the segment as corrupt (a watermark past its end).
    /// </summary>
    [Fact]
    public void ExactlyFullSegmentRecoveredAfterAKillOpensAgain()
    {
        using var root = new TempDir();
        string live = Path.Combine(root.Path, "live"), killed = Path.Combine(root.Path, "killed");
        const int payload = 56; // a 64-byte frame: (8192 - 64) / 64 = 127 records fill the first segment exactly
        int perSegment = (int)(SegmentBytes - SegmentLayout.FirstRecordOffset) / SegmentLayout.FrameLength(payload);
        var options = new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async };
        using (var q = new MmapQueue(live, options))
        {
            for (int i = 0; i <= perSegment; i++) q.Enqueue(new byte[payload]); // the last one rolls to a second segment
            Assert.Equal(2, q.Segments.Length);
            CorruptionTests.CopyDirectory(live, killed); // a kill: nothing flushed, no watermark on disk
        }
        for (int open = 0; open < 2; open++)
        {
            using var q = new MmapQueue(killed, options);
            Assert.Equal(perSegment + 1, q.NextSequence);
        }
    }
}
