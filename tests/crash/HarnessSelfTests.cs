using MmapQueues.Tests.Crash.Harness;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// The suite catches bugs: a writer that acknowledges before it syncs (TestOnlySkipMsyncEveryNthFlush)
/// fails the power-loss check (loses an acknowledged record, or leaves a segment recovery must refuse) and passes the process-kill one, and a never-flushed async queue loses its
/// records at a power cut (proof that the cut really drops the page cache).
/// </summary>
public sealed class HarnessSelfTests(ITestOutputHelper output)
{
    private const int SkipEvery = 3;

    [RequiresLoopFilesystemFact("ext4")]
    public void BrokenWriterFailsThePowerLossCheck()
    {
        using var fs = LoopFilesystem.Create("ext4");
        int maxCycles = 60; // a corrupt-on-open cycle (also a symptom of the broken writer) skips to a fresh queue, using up to 4
        var runner = new CrashCycleRunner
        {
            Root = fs.MountPoint, Mode = FlushMode.Sync, AfterKill = fs.PowerCut, Seed = CrashSettings.NewSeed(), Output = output,
            SkipMsyncEveryNthFlush = SkipEvery, MaxRecordsPerRun = 10_000,
        };
        runner.Run(maxCycles, stopWhen: v => v.Any(ShowsTheBug));
        string? caught = runner.Violations.FirstOrDefault(ShowsTheBug);
        output.WriteLine(caught is null ? "NOT CAUGHT" : $"caught after {runner.Stats.Cycles} cycles: {caught}");
        Assert.True(caught is not null,
            $"a writer that skips every {SkipEvery}rd msync survived {runner.Stats.Cycles} power cuts without losing an acknowledged record: the harness cannot see the bug");
    }

    /// <summary>
    /// The two ways a skipped msync shows after a power cut: an acknowledged record is missing, or recovery
    /// refuses the segment because its header's durable watermark (written back by the kernel on its own)
    /// promises bytes that never reached the disk. Which one appears depends on when the kernel wrote the
    /// header page back; a correct writer produces neither (the power-loss tests demand zero violations).
    /// </summary>
    private static bool ShowsTheBug(string violation) =>
        violation.Contains(CycleCheck.AckedLost, StringComparison.Ordinal) ||
        violation.Contains(CycleCheck.NotOpenedCleanly, StringComparison.Ordinal);

    [Fact]
    public void BrokenWriterPassesTheProcessKillCheck()
    {
        using var root = new TempDir();
        var runner = new CrashCycleRunner
        {
            Root = root.Path, Mode = FlushMode.Sync, EveryEnqueuedMustSurvive = true, Seed = CrashSettings.NewSeed(), Output = output,
            SkipMsyncEveryNthFlush = SkipEvery,
        };
        runner.Run(CrashSettings.Cycles(6));
        Assert.True(runner.Violations.Count == 0, string.Join("\n", runner.Violations.Take(10)));
    }

    /// <summary>
    /// Up to <see cref="CanaryAttempts"/> tries, each on a fresh queue: the claim is that a cut <i>can</i> drop the
    /// page cache, and one try that loses records proves it. A single try is not enough on a shared machine:
    /// another program's <c>sync</c>, or the kernel's background write-back once the machine's dirty memory is
    /// high, can write the canary's pages before the cut (docs/MEASUREMENTS.md). A harness whose cut never drops
    /// anything still fails every try.
    /// </summary>
    [RequiresLoopFilesystemFact("ext4")]
    public void AsyncCanaryLosesUnsyncedRecordsAtPowerCut()
    {
        using var fs = LoopFilesystem.Create("ext4");
        const int maxExtra = 300, records = 2000;
        var tries = new List<string>();
        for (int attempt = 1; attempt <= CanaryAttempts; attempt++)
        {
            string dir = Path.Combine(fs.MountPoint, $"canary{attempt}");
            ChildProcess child;
            using (child = ChildProcess.Start(["--dir", dir, "--mode", "Async", "--flush-every", "0", "--segment", (1 << 20).ToString(),
                       "--max-extra", maxExtra.ToString(), "--max-records", records.ToString()]))
            {
                Assert.True(child.WaitFor(c => c.OtherLines.Contains("OK"), TimeSpan.FromSeconds(60)), "the canary child did not append its records");
                child.Kill();
                fs.PowerCut();
            }
            RecoveredQueue rec = QueueChecker.OpenAndRead(dir, 1 << 20, maxExtra);
            tries.Add($"try {attempt}: enqueued {child.Enqueued.Count}, never flushed, recovered {rec.Tags.Count} (torn tails truncated {rec.TornTails})");
            output.WriteLine("canary " + tries[^1]);
            Assert.Equal(records, child.Enqueued.Count);
            if (rec.Tags.Count < child.Enqueued.Count) return; // the cut dropped unsynced records: the harness can see a lost flush
        }
        Assert.Fail($"all {records} unsynced records survived {CanaryAttempts} power cuts: the cut does not drop the page cache, so the " +
                    $"power-loss tests prove nothing ({string.Join("; ", tries)})");
    }

    private const int CanaryAttempts = 3;
}
