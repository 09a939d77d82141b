using MmapQueues.Crash;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// Compares what recovery returned after one crash with what the child reported and with what the
/// previous cycle verified. Returns violations (empty = the cycle passed) rather than throwing, so the
/// broken-writer test can look for the one it expects.
/// </summary>
internal static class CycleCheck
{
    /// <summary>Prefix of the violation that a lost acknowledged record produces.</summary>
    public const string AckedLost = "ACKNOWLEDGED RECORD LOST";

    /// <summary>Prefix of the violation recorded when recovery refuses the queue (it reported corruption).</summary>
    public const string NotOpenedCleanly = "the queue did not open or read cleanly";

    public static List<string> Violations(IReadOnlyList<long> baseline, ChildProcess child, int run, List<long> recovered,
        bool everyEnqueuedMustSurvive, CrashStats stats)
    {
        var v = new List<string>();
        int count = recovered.Count;

        // Records verified after the previous cycle were made durable by that open + Dispose.
        if (count < baseline.Count) v.Add($"{baseline.Count - count} records verified in an earlier cycle are gone ({count} left of {baseline.Count})");
        for (int i = 0; i < Math.Min(count, baseline.Count); i++)
            if (recovered[i] != baseline[i] && recovered[i] != QueueChecker.Deleted) { v.Add($"record {i} changed since the last cycle: tag 0x{baseline[i]:X} became 0x{recovered[i]:X}"); break; }
        if (child.StartSequence >= 0 && child.StartSequence != baseline.Count)
            v.Add($"the child opened the queue at sequence {child.StartSequence}; the last verified count was {baseline.Count}");

        // This run's records: all from this run, and per producer a gap-free run of k = 0, 1, 2, ...
        var nextK = new Dictionary<int, long>();
        for (int i = baseline.Count; i < count; i++)
        {
            long tag = recovered[i];
            if (tag == QueueChecker.Deleted)
            {
                // Retention deleted it after the child's consumer read and verified it: consumer mode runs
                // one producer, so record i of this run is its k = i - baseline.Count.
                nextK[0] = i - baseline.Count + 1;
                continue;
            }
            if (tag == QueueChecker.Aborted)
            {
                stats.Aborted++; // a producer killed inside its Enqueue: its record never returned (checked below)
                continue;
            }
            int p = TestRecord.Producer(tag);
            long expectedK = nextK.GetValueOrDefault(p);
            if (TestRecord.Run(tag) != run || TestRecord.K(tag) != expectedK)
            {
                v.Add($"record {i}: tag (run {TestRecord.Run(tag)}, producer {p}, k {TestRecord.K(tag)}), expected run {run} k {expectedK}: not a gap-free prefix");
                break;
            }
            nextK[p] = expectedK + 1;
        }

        long lost = 0;
        foreach ((long seq, long tag) in child.Enqueued)
        {
            if (seq < count)
            {
                if (recovered[(int)seq] != tag && recovered[(int)seq] != QueueChecker.Deleted) v.Add($"record {seq}: Enqueue returned it for tag 0x{tag:X}, recovery holds 0x{recovered[(int)seq]:X}");
            }
            else lost++;
        }
        if (lost > 0 && everyEnqueuedMustSurvive)
            v.Add($"{lost} records whose Enqueue returned are gone after a process kill (recovered {count}, highest enqueued {child.Enqueued.Keys.Max()})");

        long ackedThisRun = Math.Max(0, child.MaxAcked + 1 - baseline.Count);
        long ackedLost = Math.Max(0, child.MaxAcked + 1 - count);
        if (ackedLost > 0)
            v.Add($"{AckedLost}: acknowledged durable up to sequence {child.MaxAcked}, recovered only {count} records ({ackedLost} lost)");

        stats.Cycles++;
        if (child.StartSequence < 0) stats.KilledBeforeOpen++;
        stats.Enqueued += child.Enqueued.Count;
        stats.Acked += ackedThisRun;
        stats.LostEnqueued += lost;
        stats.LostAcked += ackedLost;
        return v;
    }
}
