namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// Consumer mode: compares the consumer's committed position after a crash with the commits the child
/// reported. The position must be one the child committed (never garbage): the one it started the run
/// at, or one of its <c>c</c> lines (a commit that started; the last may have been in flight at the
/// kill). It is never below the last <c>C</c> (Commit returns after fdatasync, so even a power cut keeps
/// it), except that a commit past the records a power cut took back is moved back to the end at open.
/// </summary>
internal static class CursorCheck
{
    /// <summary>Violations of one cycle (empty = passed); counts the outcome in <paramref name="stats"/>.</summary>
    /// <param name="startedAt">The position after the previous cycle's check, or null when the consumer was not registered yet.</param>
    /// <param name="child">The killed child (its c and C lines).</param>
    /// <param name="rec">What the checker found on open, with the consumer's committed position.</param>
    /// <param name="nothingMayBeLost">A process kill: no record is lost, so no commit may be past the end.</param>
    /// <param name="stats">Where the outcome is counted.</param>
    public static List<string> Violations(long? startedAt, ChildProcess child, RecoveredQueue rec, bool nothingMayBeLost, CursorStats stats)
    {
        var v = new List<string>();
        long end = rec.Tags.Count;
        stats.Cycles++;
        stats.Commits += Math.Max(0, child.CommitsReturned.Count - 1); // the first C is the position it opened at
        if (rec.FirstSequence > 0) stats.RetentionCycles++;
        long? lastReturned = child.CommitsReturned.Count > 0 ? child.CommitsReturned.Max() : startedAt;
        if (rec.ConsumerPosition is not { } at)
        {
            if (lastReturned is not null) v.Add($"consumer position lost: it had committed {lastReturned}, the cursors file has no entry after open");
            else stats.NotRegistered++;
            return v;
        }

        // Every position the child may have made durable: where it started (registration at FirstSequence = 0
        // on a queue that had no consumer yet), every commit it started, every commit it saw return.
        var committed = new HashSet<long>(child.CommitsStarted.Concat(child.CommitsReturned)) { startedAt ?? 0 };
        bool clamped = at == end && committed.Any(c => c > end);
        if (!committed.Contains(at) && !clamped)
            v.Add($"consumer recovered at {at}, a position the child never committed (last returned {lastReturned}, " +
                  $"last started {child.CommitsStarted.LastOrDefault(-1)}, queue end {end})");
        if (lastReturned is { } last && at < Math.Min(last, end))
            v.Add($"consumer recovered at {at}, below its last returned commit {last} (queue end {end}): a durable commit was lost");
        if (clamped && nothingMayBeLost)
            v.Add($"consumer committed past the end ({committed.Max()} > {end}) after a process kill, which loses no record");

        if (v.Count > 0) return v;
        if (at == lastReturned) stats.AtLastReturned++;
        else if (clamped && (at < lastReturned || !committed.Contains(at))) stats.ClampedToEnd++;
        else stats.InFlightLanded++;
        return v;
    }
}
