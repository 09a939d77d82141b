using System.Globalization;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// Runs crash cycles: start the child on a queue, let it append, SIGKILL it at a random moment (sometimes
/// while it is still opening or recovering the queue; with small segments, often during a roll or a
/// preheat; in sync and async mode, usually inside a flush), apply <see cref="AfterKill"/> (nothing for a
/// process kill, a power cut for the loop filesystem), then open the queue with the library and check it.
/// A queue lives for <see cref="FreshQueueEvery"/> cycles, so recovery of recovered queues is exercised too.
/// </summary>
internal sealed class CrashCycleRunner
{
    private static readonly long[] SegmentSizes = [8 << 10, 16 << 10, 64 << 10];
    private static readonly int[] MaxExtras = [40, 300, 3000];
    private static readonly int[] AsyncFlushEvery = [1, 8, 64];
    private static readonly int[] ConsumeEvery = [1, 4, 32];
    private const string ConsumerName = "c"; // the child's Consumer.Name

    public required string Root { get; init; }
    public required FlushMode Mode { get; init; }
    /// <summary>Called after the child is dead and before the queue is checked (the power cut).</summary>
    public Action AfterKill { get; init; } = () => { };
    public bool EveryEnqueuedMustSurvive { get; init; }
    public int SkipMsyncEveryNthFlush { get; init; }
    public int FreshQueueEvery { get; init; } = 4;
    public int MaxRecordsPerRun { get; init; } = 20_000;
    public int MaxKillDelayMs { get; init; } = 250;
    /// <summary>
    /// Consumer mode: a named consumer in the child reads and commits every 1, 4 or 32 records, so kills land
    /// in cursor commits; its recovered position is checked (<see cref="CursorCheck"/>), and retention deletes
    /// consumed segments, so the checker reads from FirstSequence. One producer.
    /// </summary>
    public bool Consumer { get; init; }
    /// <summary>Producer threads in every cycle (null: one, or three in some sync cycles).</summary>
    public int? Producers { get; init; }
    /// <summary>Odd producers append with the claim API (<c>Enqueue(length, state, write)</c>), so kills land inside callbacks too.</summary>
    public bool ClaimApi { get; init; }
    /// <summary><see cref="MmapQueueOptions.RecycleSegments"/> in the child (on by default, as in the library).</summary>
    public bool RecycleSegments { get; init; } = true;
    public required int Seed { get; init; }
    public ITestOutputHelper? Output { get; init; }

    public CrashStats Stats { get; } = new();
    public List<string> Violations { get; } = new();

    /// <summary>Runs up to <paramref name="cycles"/> cycles; stops early when <paramref name="stopWhen"/> says so.</summary>
    public CrashStats Run(int cycles, Func<List<string>, bool>? stopWhen = null)
    {
        var rng = new Random(Seed);
        string dir = "";
        long segment = 0;
        int maxExtra = 0;
        List<long> baseline = new();
        long? consumerAt = null; // the consumer's position verified after the last cycle (null: not registered)
        for (int cycle = 0; cycle < cycles; cycle++)
        {
            int thisCycle = cycle;
            if (cycle % FreshQueueEvery == 0)
            {
                if (dir.Length > 0) Directory.Delete(dir, recursive: true);
                dir = Path.Combine(Root, $"q{cycle}");
                segment = SegmentSizes[rng.Next(SegmentSizes.Length)];
                maxExtra = Math.Min(MaxExtras[rng.Next(MaxExtras.Length)], (int)segment / 2);
                baseline = new List<long>();
                consumerAt = null;
            }
            int run = cycle % FreshQueueEvery;
            int producers = Producers ?? (Mode == FlushMode.Sync && cycle % 3 == 2 && !Consumer ? 3 : 1); // group commit of concurrent producers
            // Consumer mode, one cycle in three: a short run, so the consumer catches up and commits the end
            // while the last records are still unflushed (async): a power cut then takes back records it committed past.
            int maxRecords = Consumer && rng.Next(3) == 0 ? 300 : MaxRecordsPerRun;
            var args = new List<string>
            {
                "--dir", dir, "--mode", Mode.ToString(), "--segment", Str(segment), "--max-extra", Str(maxExtra),
                "--run", Str(run), "--producers", Str(producers), "--max-records", Str(maxRecords),
                "--flush-every", Str(AsyncFlushEvery[rng.Next(AsyncFlushEvery.Length)]), "--interval-ms", "5",
                "--skip-msync-every", Str(SkipMsyncEveryNthFlush), "--claim-api", ClaimApi ? "true" : "false",
                "--recycle", RecycleSegments ? "true" : "false",
            };
            if (Consumer) args.AddRange(["--consume-every", Str(ConsumeEvery[rng.Next(ConsumeEvery.Length)])]);
            string plan;
            using (var child = ChildProcess.Start(args))
            {
                if (rng.Next(10) == 0)
                {
                    int ms = rng.Next(60, 400); // the runtime starts in ~100 ms: this lands in start-up, open or recovery
                    Thread.Sleep(ms);
                    plan = $"{ms} ms after start";
                }
                else
                {
                    if (!child.WaitFor(c => c.StartSequence >= 0, TimeSpan.FromSeconds(60)))
                    {
                        Violations.Add($"cycle {thisCycle} (seed {Seed}): the child never opened {dir}: {string.Join(" | ", child.OtherLines)}");
                        child.Kill();
                        dir = "";
                        cycle = (cycle / FreshQueueEvery + 1) * FreshQueueEvery - 1; // start a fresh queue next
                        continue;
                    }
                    // Every other such cycle first waits for progress (a record acknowledged durable and, for a consumer,
                    // a commit returned), so the kill lands among acknowledgements however slow this machine's disk is
                    // at the moment: a host disk kept busy by another program can stretch each msync and fdatasync past
                    // the whole kill delay, and a run of such cycles would acknowledge nothing and test nothing.
                    bool afterProgress = rng.Next(2) == 0 &&
                        child.WaitFor(c => c.MaxAcked >= 0 && (!Consumer || c.CommitsReturned.Count > 1), TimeSpan.FromSeconds(30));
                    int ms = rng.Next(MaxKillDelayMs);
                    Thread.Sleep(ms);
                    plan = afterProgress ? $"{ms} ms after the first acknowledgement" : $"{ms} ms after open";
                }
                child.Kill();
                Stats.RecycledRolls += child.RecycledRolls;
                if (child.Error is { } error) Violations.Add($"cycle {thisCycle}: the child failed: {error}");
                AfterKill();
                var found = new List<string>();
                try
                {
                    RecoveredQueue rec = QueueChecker.OpenAndRead(dir, segment, maxExtra, Consumer ? ConsumerName : null);
                    Stats.TornTails += rec.TornTails;
                    Stats.DroppedSegments += rec.DroppedSegments;
                    found.AddRange(CycleCheck.Violations(baseline, child, run, rec.Tags, EveryEnqueuedMustSurvive, Stats));
                    baseline = rec.Tags;
                    if (Consumer)
                    {
                        found.AddRange(CursorCheck.Violations(consumerAt, child, rec, EveryEnqueuedMustSurvive, Stats.Cursors));
                        consumerAt = rec.ConsumerPosition;
                    }
                }
                catch (Exception e) when (e is IOException or CrashCheckException or InvalidOperationException)
                {
                    found.Add($"{CycleCheck.NotOpenedCleanly}: {e.GetType().Name}: {e.Message}");
                    baseline = new List<long>();
                    consumerAt = null;
                    dir = "";
                    cycle = (cycle / FreshQueueEvery + 1) * FreshQueueEvery - 1; // start a fresh queue next
                }
                foreach (string f in found)
                    Violations.Add($"cycle {thisCycle} ({Mode}, segment {segment}, max payload {maxExtra + 8}, producers {producers}, " +
                                   $"kill {plan}, seed {Seed}): {f}");
            }
            if (stopWhen?.Invoke(Violations) == true) break;
        }
        if (dir.Length > 0 && Directory.Exists(dir))
        {
            Stats.SegmentsSeen = Directory.GetFiles(dir, "*.seg").Length;
            Directory.Delete(dir, recursive: true);
        }
        Output?.WriteLine($"{Mode}: {Stats}");
        foreach (string v in Violations.Take(20)) Output?.WriteLine("VIOLATION " + v);
        return Stats;
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
