namespace MmapQueues.Tests.Crash.Harness;

/// <summary>Totals over a series of crash cycles, for the test output and the issue note.</summary>
internal sealed class CrashStats
{
    public int Cycles;
    public int KilledBeforeOpen;
    public long Enqueued;         // E lines seen (records whose Enqueue returned)
    public long Acked;            // records acknowledged durable
    public long LostEnqueued;     // enqueued but not recovered
    public long Aborted;          // aborted records recovery made of claims killed producers left
    public long LostAcked;        // acknowledged but not recovered (must stay 0 in a correct writer)
    public int TornTails;         // tails recovery truncated
    public int DroppedSegments;   // segments recovery dropped after a tear in an earlier one
    public int SegmentsSeen;
    public long RecycledRolls;    // rolls into a recycled segment the children reported (consumer mode)
    public CursorStats Cursors { get; } = new();

    public override string ToString() =>
        $"cycles {Cycles} (killed before open {KilledBeforeOpen}), enqueued {Enqueued}, acknowledged {Acked}, " +
        $"lost enqueued {LostEnqueued}, lost acknowledged {LostAcked}, aborted (killed mid-Enqueue) {Aborted}, torn tails truncated {TornTails}, " +
        $"segments dropped after a tear {DroppedSegments}, segment files at the end of cycles {SegmentsSeen}, rolls into recycled segments {RecycledRolls}" +
        (Cursors.Cycles > 0 ? $"; consumer: {Cursors}" : "");
}

/// <summary>Consumer-mode totals: commits the child reported and where each cycle's consumer position was recovered.</summary>
internal sealed class CursorStats
{
    public int Cycles;             // cycles run with a consumer
    public long Commits;           // C lines after a Commit returned
    public int NotRegistered;      // killed before the consumer registered: no position to check
    public int AtLastReturned;     // recovered at the last C (or, with no C this cycle, the position it started from)
    public int InFlightLanded;     // recovered at a later c: the commit in flight at the kill was durable
    public int ClampedToEnd;       // the commit was past the records a power cut kept: moved back to the end at open
    public int RetentionCycles;    // cycles whose queue had segments deleted by retention (FirstSequence > 0)

    public override string ToString() =>
        $"cycles {Cycles}, commits returned {Commits}, recovered at the last returned commit {AtLastReturned}, " +
        $"at an in-flight commit {InFlightLanded}, clamped to the end {ClampedToEnd}, not yet registered {NotRegistered}, " +
        $"cycles reading from FirstSequence > 0 {RetentionCycles}";
}
