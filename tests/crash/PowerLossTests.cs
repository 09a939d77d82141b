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

    private void RunPowerLoss(string fsType, FlushMode mode, int cycles)
    {
        using var fs = LoopFilesystem.Create(fsType);
        var runner = new CrashCycleRunner
        {
            Root = fs.MountPoint, Mode = mode, AfterKill = fs.PowerCut, Seed = CrashSettings.NewSeed(), Output = output,
            MaxRecordsPerRun = 10_000,
        };
        output.WriteLine($"{fsType}:");
        CrashStats stats = runner.Run(cycles);
        Assert.True(runner.Violations.Count == 0, string.Join("\n", runner.Violations.Take(10)));
        Assert.Equal(0, stats.LostAcked);
        Assert.True(stats.Acked > 0, "nothing was acknowledged: the cycles tested nothing");
    }
}
