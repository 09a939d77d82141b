using MmapQueues.Crash;
using MmapQueues.Tests.Crash.Harness;
using Xunit.Abstractions;

namespace MmapQueues.Tests.Crash;

/// <summary>
/// Flip, zero, garble and truncate bytes of queue files at seeded random positions (each case a fresh copy
/// of a prepared queue). Opening either truncates a torn tail or throws a QueueCorruptedException naming
/// the file and offset; a reader never gets a payload that differs from what was written; nothing crashes
/// or hangs; records that were durable are never dropped silently.
/// </summary>
public sealed class CorruptionTests(ITestOutputHelper output)
{
    private const long SegmentBytes = 8 << 10;
    private const int MaxExtra = 120;
    private static readonly TimeSpan CaseBound = TimeSpan.FromSeconds(20);

    private enum Outcome { Intact, TornTailTruncated, CorruptAtOpen, CorruptOnRead, NoChange }

    /// <summary>A prepared queue to mutate: its records and how many of them must survive or be reported.</summary>
    private sealed record Corpus(string Name, string Dir, List<long> Tags, long StrictCount);

    [Fact]
    public void MutatedQueueFilesAreTruncatedOrReportedNeverMisread()
    {
        using var root = new TempDir(FastScratch());
        Corpus[] corpora = [MakeClean(root.Path), MakeKilled(root.Path)];
        int cases = CrashSettings.Cycles(12) * 250;
        int seed = CrashSettings.Seed(7);
        var counts = new Dictionary<(string, MutationKind, Outcome), int>();
        var failures = new List<string>();
        string work = Path.Combine(root.Path, "case");
        for (int i = 0; i < cases && failures.Count < 20; i++)
        {
            var rng = new Random(HashCode.Combine(seed, i));
            Corpus corpus = corpora[i % corpora.Length];
            CopyDirectory(corpus.Dir, work);
            Mutation m = Mutation.Pick(work, rng);
            bool changed = m.ApplyTo(work, rng);
            Outcome outcome;
            try
            {
                Outcome result = Bounded.Run(() => OpenAndCheck(work, corpus), CaseBound, "open and read");
                outcome = changed || result != Outcome.Intact ? result : Outcome.NoChange;
            }
            catch (CrashCheckException ce)
            {
                failures.Add($"case {i} (seed {seed}, corpus {corpus.Name}): {m}: {ce.Message}");
                continue;
            }
            var key = (corpus.Name, m.Kind, outcome);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        output.WriteLine($"{cases} cases, seed {seed} (MMAPQ_CRASH_SEED replays), segments of {SegmentBytes} bytes");
        foreach (var g in counts.OrderBy(k => k.Key.Item1).ThenBy(k => k.Key.Item2).ThenBy(k => k.Key.Item3))
            output.WriteLine($"  {g.Key.Item1,-7} {g.Key.Item2,-12} {g.Key.Item3,-18} {g.Value}");
        foreach (var (outcome, n) in counts.GroupBy(k => k.Key.Item3).Select(g => (g.Key, g.Sum(x => x.Value))))
            output.WriteLine($"  total {outcome,-18} {n}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// Opens the mutated copy and reads it. Every payload must be the one written at that sequence; fewer
    /// records than written is allowed only as a torn tail that keeps every strict (durable) record.
    /// </summary>
    private static Outcome OpenAndCheck(string dir, Corpus corpus)
    {
        var log = new CapturingLoggerFactory();
        MmapQueue q;
        try
        {
            q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async }, log);
        }
        catch (QueueCorruptedException e)
        {
            CheckNamesFileAndOffset(dir, e);
            return Outcome.CorruptAtOpen;
        }
        catch (Exception e)
        {
            throw new CrashCheckException($"opening threw {e.GetType().Name} instead of truncating or reporting corruption: {e.Message}");
        }
        long count = 0, next = 0;
        try
        {
            using (q)
            using (var r = q.OpenReader(0))
            {
                while (r.TryRead(out ReadOnlySpan<byte> payload))
                {
                    long seq = r.NextSequence - 1;
                    string? bad = TestRecord.Verify(payload, MaxExtra, out long tag);
                    if (bad is not null || seq >= corpus.Tags.Count || tag != corpus.Tags[(int)seq])
                        throw new CrashCheckException($"record {seq} reached a reader with a payload that differs from what was written: {bad ?? $"tag 0x{tag:X}"}");
                    CheckSkippedNotDurable(next, seq, corpus);
                    count++;
                    next = seq + 1;
                }
                CheckSkippedNotDurable(next, r.NextSequence, corpus);
                if (r.NextSequence != q.NextSequence)
                    throw new CrashCheckException($"the reader stopped at sequence {r.NextSequence} but the queue's next sequence is {q.NextSequence}");
                next = q.NextSequence;
            }
        }
        catch (QueueCorruptedException e)
        {
            CheckNamesFileAndOffset(dir, e);
            return Outcome.CorruptOnRead;
        }
        catch (Exception e) when (e is not CrashCheckException)
        {
            throw new CrashCheckException($"reading threw {e.GetType().Name} instead of reporting corruption: {e.Message}");
        }
        bool truncated = log.Count(RecoveryEvents.TornTailTruncated) + log.Count(RecoveryEvents.DroppedSegmentAfterTear) > 0;
        if (next < corpus.StrictCount)
            throw new CrashCheckException($"opened with {next} records, but {corpus.StrictCount} were durable: durable records dropped without an error " +
                                          $"(log: {string.Join(" | ", log.Messages())})");
        // Past the durable watermark, zeroed records look exactly like unflushed pages a power cut lost:
        // recovery keeps the prefix, and logs only when it had non-zero bytes to clear.
        return truncated || count < corpus.Tags.Count ? Outcome.TornTailTruncated : Outcome.Intact;
    }

    /// <summary>
    /// Sequences a reader skipped (aborted records: recovery found a zeroed frame, taken for a reservation
    /// whose claim was never stored, before an intact next record) may only lie past the durable ones.
    /// </summary>
    private static void CheckSkippedNotDurable(long from, long to, Corpus corpus)
    {
        if (to > from && from < corpus.StrictCount)
            throw new CrashCheckException($"records [{from}, {to}) read as aborted, but every record below {corpus.StrictCount} was durable");
    }

    internal static void CheckNamesFileAndOffset(string dir, QueueCorruptedException e)
    {
        if (Path.GetDirectoryName(e.FilePath) != Path.GetFullPath(dir))
            throw new CrashCheckException($"QueueCorruptedException names {e.FilePath}, not a file of {dir}: {e.Message}");
        long length = File.Exists(e.FilePath) ? new FileInfo(e.FilePath).Length : -1;
        if (e.Offset < 0 || (length >= 0 && e.Offset > Math.Max(length, 64)))
            throw new CrashCheckException($"QueueCorruptedException offset {e.Offset} is outside {e.FilePath} ({length} bytes): {e.Message}");
        if (!e.Message.Contains(e.FilePath, StringComparison.Ordinal) || !e.Message.Contains(e.Offset.ToString(), StringComparison.Ordinal))
            throw new CrashCheckException($"QueueCorruptedException message does not name the file and offset: {e.Message}");
    }

    /// <summary>A queue closed cleanly: every record is durable, so no mutation may drop one silently.</summary>
    private static Corpus MakeClean(string root)
    {
        string dir = Path.Combine(root, "clean");
        var tags = new List<long>();
        using (var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async }))
            Append(q, tags, run: 0, 160);
        return new Corpus("clean", dir, tags, tags.Count);
    }

    /// <summary>
    /// A queue as a process kill leaves it: flushed records, then unflushed ones in the tail segment (a copy
    /// of the files taken while the writer is alive is what the page cache holds). Records in sealed
    /// segments are durable and strict; the tail segment lies past its durable watermark.
    /// </summary>
    private static Corpus MakeKilled(string root)
    {
        string dir = Path.Combine(root, "killed"), live = Path.Combine(root, "killed-live");
        var tags = new List<long>();
        using (var q = new MmapQueue(live, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async }))
        {
            Append(q, tags, run: 0, 120);
            q.Flush();
            Append(q, tags, run: 1, 40);
            CopyDirectory(live, dir);
        }
        string tail = Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal).Last();
        long tailBase = long.Parse(Path.GetFileNameWithoutExtension(tail), System.Globalization.CultureInfo.InvariantCulture);
        return new Corpus("killed", dir, tags, tailBase);
    }

    internal static void Append(MmapQueue q, List<long> tags, int run, int n)
    {
        byte[] buffer = new byte[TestRecord.TagBytes + MaxExtra];
        for (int k = 0; k < n; k++)
        {
            long tag = TestRecord.Tag(run, 0, k);
            Span<byte> p = buffer.AsSpan(0, TestRecord.Length(tag, MaxExtra));
            TestRecord.Fill(tag, p);
            q.Enqueue(p);
            tags.Add(tag);
        }
    }

    internal static void CopyDirectory(string from, string to)
    {
        if (Directory.Exists(to)) Directory.Delete(to, recursive: true);
        Directory.CreateDirectory(to);
        // Temporary files are left out: a background index write may rename one away between the listing and
        // its copy, and opening the copy would delete every one of them anyway (what a kill leaves there).
        foreach (string f in Directory.GetFiles(from))
            if (Path.GetFileName(f) != "lock" && !f.EndsWith(".tmp", StringComparison.Ordinal))
                File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    /// <summary>tmpfs when there is one: msync and fsync cost nothing there, so thousands of cases stay fast.</summary>
    internal static string? FastScratch() => Directory.Exists("/dev/shm") ? "/dev/shm/mmapq-crash" : null;
}
