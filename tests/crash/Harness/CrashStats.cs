namespace MmapQueues.Tests.Crash.Harness;

/// <summary>Totals over a series of crash cycles, for the test output and the issue note.</summary>
internal sealed class CrashStats
{
    public int Cycles;
    public int KilledBeforeOpen;
    public long Enqueued;         // E lines seen (records whose Enqueue returned)
    public long Acked;            // records acknowledged durable
    public long LostEnqueued;     // enqueued but not recovered
    public long LostAcked;        // acknowledged but not recovered (must stay 0 in a correct writer)
    public int TornTails;         // tails recovery truncated
    public int DroppedSegments;   // segments recovery dropped after a tear in an earlier one
    public int SegmentsSeen;

    public override string ToString() =>
        $"cycles {Cycles} (killed before open {KilledBeforeOpen}), enqueued {Enqueued}, acknowledged {Acked}, " +
        $"lost enqueued {LostEnqueued}, lost acknowledged {LostAcked}, torn tails truncated {TornTails}, " +
        $"segments dropped after a tear {DroppedSegments}, segment files at the end of cycles {SegmentsSeen}";
}
