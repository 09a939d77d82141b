using MmapQueues.Crash;
using MmapQueues.Tests.Crash.Harness;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// Flip, zero, garble and truncate bytes of the <c>cursors</c> file (two checksummed slots, the newer
/// state in one, the one before in the other) at seeded random positions, each case on a fresh copy of a
/// queue with two named consumers. Opening yields the newest state, or the one before it when the newest
/// slot is damaged, or (both slots damaged, or a truncated file) a QueueCorruptedException naming the cursors file and offset, with expected and
/// found; never another position, never a silent reset, never a crash or hang.
/// </summary>
public sealed class CursorCorruptionTests(ITestOutputHelper output)
{
    private const long SegmentBytes = 8 << 10;
    private const int MaxExtra = 120; // CorruptionTests.Append writes payloads of up to 8 + 120 bytes
    private static readonly TimeSpan CaseBound = TimeSpan.FromSeconds(20);

    private enum Outcome { NewState, OldState, CorruptAtOpen, NoChange }

    /// <summary>One mutation, or (one case in four) the same mutation in both slots: the path where neither slot is valid.</summary>
    private enum Where { OneSlot, BothSlots }

    [Fact]
    public void MutatedCursorsFileYieldsTheNewOrOldPositionsOrIsReported()
    {
        using var root = new TempDir(CorruptionTests.FastScratch());
        string corpus = Path.Combine(root.Path, "consumers");
        List<long> tags = MakeCorpus(corpus);
        var newState = OpenState(corpus);
        var oldState = OldState(root.Path, corpus, newState);
        Assert.NotEqual(Show(newState), Show(oldState)); // else the test could not tell old from new

        int cases = CrashSettings.Cycles(8) * 250;
        int seed = CrashSettings.Seed(11);
        var counts = new Dictionary<(Where, MutationKind, Outcome), int>();
        var failures = new List<string>();
        string work = Path.Combine(root.Path, "case");
        for (int i = 0; i < cases && failures.Count < 20; i++)
        {
            var rng = new Random(HashCode.Combine(seed, i));
            CorruptionTests.CopyDirectory(corpus, work);
            Mutation m = Mutation.PickIn(work, "cursors", rng);
            bool changed = m.ApplyTo(work, rng);
            Where where = Where.OneSlot;
            if (m.Kind != MutationKind.Truncate && rng.Next(4) == 0)
            {
                long half = new FileInfo(Path.Combine(work, "cursors")).Length / 2;
                m = m with { Offset = m.Offset >= half ? m.Offset - half : m.Offset + half };
                changed |= m.ApplyTo(work, rng);
                where = Where.BothSlots;
            }
            Outcome outcome;
            try
            {
                outcome = Bounded.Run(() => OpenAndCheck(work, tags, newState, oldState), CaseBound, "open and read");
                if (!changed && outcome == Outcome.NewState) outcome = Outcome.NoChange;
            }
            catch (CrashCheckException ce)
            {
                failures.Add($"case {i} (seed {seed}): {m}{(where == Where.BothSlots ? ", and the same in the other slot" : "")}: {ce.Message}");
                continue;
            }
            counts[(where, m.Kind, outcome)] = counts.GetValueOrDefault((where, m.Kind, outcome)) + 1;
        }
        output.WriteLine($"{cases} cases on the cursors file ({new FileInfo(Path.Combine(corpus, "cursors")).Length} bytes), " +
                         $"seed {seed} (MMAPQ_CRASH_SEED replays); new {Show(newState)}, old {Show(oldState)}");
        foreach (var g in counts.OrderBy(k => k.Key.Item1).ThenBy(k => k.Key.Item2).ThenBy(k => k.Key.Item3))
            output.WriteLine($"  {g.Key.Item1,-9} {g.Key.Item2,-12} {g.Key.Item3,-14} {g.Value}");
        foreach (var (outcome, n) in counts.GroupBy(k => k.Key.Item3).Select(g => (g.Key, g.Sum(x => x.Value))))
            output.WriteLine($"  total {outcome,-14} {n}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(counts.Keys.Any(k => k.Item3 == Outcome.OldState), "no case fell back to the older slot: the mutations never hit the newest one");
        Assert.True(counts.Keys.Any(k => k is (Where.BothSlots, not MutationKind.Truncate, Outcome.CorruptAtOpen)),
            "no case broke both slots' checksums: the path that must report corruption instead of resetting the positions was not tested");
    }

    /// <summary>Opens the mutated copy: the consumers' positions must be the new or the old state, each resumable and readable.</summary>
    private static Outcome OpenAndCheck(string dir, List<long> tags, IReadOnlyDictionary<string, long> newState, IReadOnlyDictionary<string, long> oldState)
    {
        MmapQueue q;
        try
        {
            q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async });
        }
        catch (QueueCorruptedException e)
        {
            CorruptionTests.CheckNamesFileAndOffset(dir, e);
            if (Path.GetFileName(e.FilePath) != "cursors")
                throw new CrashCheckException($"only the cursors file was changed, but the error names {e.FilePath}: {e.Message}");
            if (!e.Message.Contains("expected", StringComparison.Ordinal) || !e.Message.Contains("found", StringComparison.Ordinal))
                throw new CrashCheckException($"the error does not say what was expected and found: {e.Message}");
            return Outcome.CorruptAtOpen;
        }
        catch (Exception e)
        {
            throw new CrashCheckException($"opening threw {e.GetType().Name} instead of reporting corruption: {e.Message}");
        }
        using (q)
        {
            IReadOnlyDictionary<string, long> found = q.Consumers;
            Outcome outcome = Same(found, newState) ? Outcome.NewState : Same(found, oldState) ? Outcome.OldState
                : throw new CrashCheckException($"opened with consumer positions {Show(found)}: neither the new {Show(newState)} nor the old {Show(oldState)}");
            foreach (string name in found.Keys)
            {
                using QueueReader r = q.OpenReader(name);
                if (r.NextSequence != found[name]) throw new CrashCheckException($"consumer {name} committed at {found[name]} resumed at {r.NextSequence}");
                if (!r.TryRead(out ReadOnlySpan<byte> payload)) throw new CrashCheckException($"consumer {name} read nothing at {r.NextSequence}");
                string? bad = TestRecord.Verify(payload, MaxExtra, out long tag);
                if (bad is not null || tag != tags[(int)found[name]])
                    throw new CrashCheckException($"consumer {name} read record {found[name]} unlike what was written: {bad ?? $"tag 0x{tag:X}"}");
            }
            return outcome;
        }
    }

    /// <summary>
    /// A queue with two named consumers, closed cleanly. The last two cursor writes are commits of "fast"
    /// (the slower "slow" does not move, so retention writes nothing after them): one slot holds fast at
    /// 150, the other the state before it.
    /// </summary>
    private static List<long> MakeCorpus(string dir)
    {
        var tags = new List<long>();
        using var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async });
        CorruptionTests.Append(q, tags, run: 0, 200);
        using (var slow = q.OpenReader("slow"))
        {
            for (int i = 0; i < 70; i++) slow.TryRead(out _);
            slow.Commit();
        }
        using var fast = q.OpenReader("fast");
        foreach (int upTo in new[] { 100, 150 })
        {
            while (fast.NextSequence < upTo) fast.TryRead(out _);
            fast.Commit();
        }
        return tags;
    }

    private static IReadOnlyDictionary<string, long> OpenState(string dir)
    {
        using var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async });
        return q.Consumers;
    }

    /// <summary>The state of the other slot: a copy whose newest slot is zeroed opens with it.</summary>
    private static IReadOnlyDictionary<string, long> OldState(string root, string corpus, IReadOnlyDictionary<string, long> newState)
    {
        string copy = Path.Combine(root, "old");
        for (int slot = 0; slot < 2; slot++)
        {
            CorruptionTests.CopyDirectory(corpus, copy);
            string path = Path.Combine(copy, "cursors");
            byte[] bytes = File.ReadAllBytes(path);
            Array.Clear(bytes, slot * bytes.Length / 2, bytes.Length / 2);
            File.WriteAllBytes(path, bytes);
            var state = OpenState(copy);
            if (!Same(state, newState)) return state;
        }
        throw new InvalidOperationException("both slots of the corpus hold the same state");
    }

    private static bool Same(IReadOnlyDictionary<string, long> a, IReadOnlyDictionary<string, long> b) =>
        a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out long v) && v == p.Value);

    private static string Show(IReadOnlyDictionary<string, long> s) =>
        "{" + string.Join(", ", s.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}: {p.Value}")) + "}";
}
