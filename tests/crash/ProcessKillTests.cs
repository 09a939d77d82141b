using MmapQueues.Tests.Crash.Harness;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// SIGKILL the writer at random moments (start-up, recovery, roll, preheat, flush): the page cache
/// survives a process kill, so every record whose Enqueue returned must be there afterwards, in every
/// flush mode, as a gap-free prefix with intact payloads.
/// </summary>
public sealed class ProcessKillTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Interval)]
    [InlineData(FlushMode.Sync)]
    public void ProcessKillLosesNoEnqueuedRecord(FlushMode mode)
    {
        using var root = new TempDir();
        var runner = new CrashCycleRunner
        {
            Root = root.Path, Mode = mode, EveryEnqueuedMustSurvive = true, Seed = CrashSettings.NewSeed(), Output = output,
        };
        CrashStats stats = runner.Run(CrashSettings.Cycles(20));
        Assert.True(runner.Violations.Count == 0, string.Join("\n", runner.Violations.Take(10)));
        Assert.True(stats.Enqueued > 0, "no cycle appended anything: the kills all came too early to test anything");
        Assert.Equal(0, stats.LostEnqueued);
    }

    /// <summary>
    /// Four producers (two of them through the claim API), SIGKILL at random moments: a producer killed inside
    /// its Enqueue leaves a claim (or, in the instant between its reservation and its claim, a zero word) that
    /// recovery turns into an aborted record, so no record whose Enqueue returned is lost, although other
    /// producers appended after the unfinished one. Every record reads back with a good CRC and payload.
    /// CI runs 6 cycles per mode; <c>MMAPQ_CRASH_CYCLES=200</c> runs 200 per mode (figures in benchmarks/RESULTS.md).
    /// </summary>
    [Theory]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Interval)]
    [InlineData(FlushMode.Sync)]
    public void ProcessKillWithFourProducersLosesNoEnqueuedRecord(FlushMode mode)
    {
        using var root = new TempDir();
        var runner = new CrashCycleRunner
        {
            Root = root.Path, Mode = mode, EveryEnqueuedMustSurvive = true, Producers = 4, ClaimApi = true,
            Seed = CrashSettings.NewSeed(), Output = output,
        };
        CrashStats stats = runner.Run(CrashSettings.Cycles(6));
        Assert.True(runner.Violations.Count == 0, string.Join("\n", runner.Violations.Take(10)));
        Assert.True(stats.Enqueued > 0, "no cycle appended anything: the kills all came too early to test anything");
        Assert.Equal(0, stats.LostEnqueued);
    }

    /// <summary>
    /// A named consumer commits every 1, 4 or 32 records while the producer appends; the kill often lands in
    /// a commit. The consumer resumes at a position the child committed, at or after its last returned
    /// commit, and reads an intact gap-free run to the end; retention deleted consumed segments on the way.
    /// </summary>
    [Theory]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Sync)]
    public void ProcessKillDuringCursorCommitsResumesAtACommittedPosition(FlushMode mode)
    {
        using var root = new TempDir();
        var runner = new CrashCycleRunner
        {
            Root = root.Path, Mode = mode, EveryEnqueuedMustSurvive = true, Consumer = true, Seed = CrashSettings.NewSeed(), Output = output,
        };
        CrashStats stats = runner.Run(CrashSettings.Cycles(12));
        Assert.True(runner.Violations.Count == 0, string.Join("\n", runner.Violations.Take(10)));
        Assert.True(stats.Cursors.Commits > 0, "the consumer never committed: the cycles tested no cursor commit");
        Assert.Equal(0, stats.LostEnqueued);
    }
}
