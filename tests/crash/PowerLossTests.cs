using MmapQueues.Tests.Crash.Harness;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// SIGKILL the writer, then cut the power of the loop filesystem under it (the dirty page cache is lost,
/// as at a power failure) and reboot it. Every mode: the queue opens, records form a gap-free prefix with
/// intact payloads (no bad checksum reaches a reader). Every acknowledged record survives: sync mode when
/// Enqueue returned, async and interval once a Flush covering them returned.
/// </summary>
public sealed class PowerLossTests(ITestOutputHelper output)
{
    [RequiresLoopFilesystemTheory("ext4")]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Interval)]
    [InlineData(FlushMode.Sync)]
    public void PowerLossOnExt4KeepsEveryAcknowledgedRecord(FlushMode mode) => RunPowerLoss("ext4", mode, CrashSettings.Cycles(16));

    [RequiresLoopFilesystemTheory("xfs")]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Interval)]
    [InlineData(FlushMode.Sync)]
    public void PowerLossOnXfsKeepsEveryAcknowledgedRecord(FlushMode mode) => RunPowerLoss("xfs", mode, CrashSettings.Cycles(6));

    /// <summary>
    /// The same with a named consumer committing (fdatasync of the cursors file) as it reads: after each cut
    /// its position is one the child committed and never below the last commit that returned, or, when it
    /// had read records the cut took back (readers see records before they are durable), the queue's end.
    /// </summary>
    [RequiresLoopFilesystemTheory("ext4")]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Sync)]
    public void PowerLossOnExt4DuringCursorCommitsKeepsEveryReturnedCommit(FlushMode mode) =>
        RunPowerLoss("ext4", mode, CrashSettings.Cycles(10), consumer: true);

    /// <summary>
    /// Recycled segments under power loss: a consumer keeps up, so retention frees segments and rolls reuse them
    /// (renamed, zeroed only in memory). A cut can bring a previous lap's frames back past the watermark; recovery
    /// must truncate them: every acknowledged record survives, the records form a gap-free prefix (a stale frame
    /// would break it), and the child's consumer checks that tags only rise as it reads (a previous lap's frame
    /// would carry an older one). CI runs a few cycles; <c>MMAPQ_CRASH_CYCLES=50</c> runs 50 per mode.
    /// </summary>
    [RequiresLoopFilesystemTheory("ext4")]
    [InlineData(FlushMode.Sync)]
    [InlineData(FlushMode.Async)]
    public void PowerLossOnExt4WithRecycledSegmentsKeepsEveryAcknowledgedRecordAndReadsNoStaleFrame(FlushMode mode) =>
        RunPowerLoss("ext4", mode, CrashSettings.Cycles(4), consumer: true, recycling: true);

    [RequiresLoopFilesystemTheory("xfs")]
    [InlineData(FlushMode.Sync)]
    [InlineData(FlushMode.Async)]
    public void PowerLossOnXfsWithRecycledSegmentsKeepsEveryAcknowledgedRecordAndReadsNoStaleFrame(FlushMode mode) =>
        RunPowerLoss("xfs", mode, CrashSettings.Cycles(4), consumer: true, recycling: true);

    private void RunPowerLoss(string fsType, FlushMode mode, int cycles, bool consumer = false, bool recycling = false)
    {
        using var fs = LoopFilesystem.Create(fsType);
        var runner = new CrashCycleRunner
        {
            Root = fs.MountPoint, Mode = mode, AfterKill = fs.PowerCut, Seed = CrashSettings.NewSeed(), Output = output,
            MaxRecordsPerRun = 10_000, Consumer = consumer,
            MaxKillDelayMs = recycling ? 1500 : 250, // long enough for rolls, frees and rolls into the freed segments
        };
        output.WriteLine($"{fsType}:");
        CrashStats stats = runner.Run(cycles);
        Assert.True(runner.Violations.Count == 0, string.Join("\n", runner.Violations.Take(10)));
        Assert.Equal(0, stats.LostAcked);
        Assert.True(stats.Acked > 0, "nothing was acknowledged: the cycles tested nothing");
        if (consumer) Assert.True(stats.Cursors.Commits > 0, "the consumer never committed: the cycles tested no cursor commit");
        if (recycling) Assert.True(stats.RecycledRolls > 0, "no roll reused a freed segment: the cycles tested no recycling");
    }
}
