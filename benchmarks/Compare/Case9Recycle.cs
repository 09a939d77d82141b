using System.Diagnostics;
using System.Globalization;
using MmapQueues.Benchmarks.Native;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Case 9 (issue 11): appends with default options, one thread, against the FileStream log (append phase, no
/// flush on either side) and the copy+CRC floor: (a) steady state, a named consumer keeping up, so rolls reuse
/// recycled segments; (b) a growing queue (no consumer) at 64 MiB and 1 GiB segments; (c) 1 KiB steady state.
/// Each queue row also gives the writer thread's minor page faults during the timed appends
/// (<c>/proc/thread-self/stat</c>) and, in steady state, how many rolls took a recycled segment.
/// </summary>
internal static class Case9Recycle
{
    private readonly record struct Sample(double Seconds, long WriterFaults, long Rolls, long RecycledRolls);

    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("Case 9: default-options append, steady state (recycling) and growing queue, vs FileStream log and floor");
        int reps = ctx.Reps(3);
        long n64 = ctx.Size(10_000_000, 300_000), n1k = ctx.Size(1_000_000, 30_000);
        // MMAPQ_BENCH_HUGEPAGE=1: the experiment of issue 11 (MADV_HUGEPAGE on new segments' mappings); off by default.
        // MMAPQ_BENCH_HUGEPAGE=ab: only the A/B rows of that experiment (growing queue, with and without, alternating).
        string? hugePages = Environment.GetEnvironmentVariable("MMAPQ_BENCH_HUGEPAGE");
        if (hugePages == "ab")
        {
            HugePagesAB(ctx, reps, n64);
            return;
        }
        Storage.SegmentFiles.AdviseHugePages = hugePages == "1";
        if (Storage.SegmentFiles.AdviseHugePages) ctx.Report.Note("MMAPQ_BENCH_HUGEPAGE=1: new segments are mapped with MADV_HUGEPAGE (an experiment, not the library's default)");
        using var floorBuffer = new AlignedBuffer(64L << 20);

        var (steady, stream) = Stats.Interleave(reps, () => Steady(ctx, 64, n64), () => Case3FileStream.StreamAppend(ctx, 64, n64, flush: false).Append);
        var floor = Enumerable.Range(0, reps).Select(_ => Case1Floor.Floor(floorBuffer, 64, n64)).ToList();
        var vsStream = Spread.Of(steady.Zip(stream, (q, s) => s / q.Seconds));
        var vsFloor = Spread.Of(steady.Zip(floor, (q, f) => f / q.Seconds));
        ctx.Report.Add(new Row("9", $"{Count(n64)} × 64 B, 1 thread, default options, a consumer keeping up (steady state, recycling)",
            Describe(steady, n64), $"{Rate(stream, n64)} M rec/s (FileStream log, no flush)",
            vsStream, "queue/FileStream", "≥ 3×", vsStream.Median >= 3, Limits.Case9Steady));
        ctx.Report.Add(new Row("9", "  the same against the copy+CRC floor",
            $"{Rate(steady.Select(r => r.Seconds), n64)} M rec/s", $"{Rate(floor, n64)} M rec/s (floor)",
            vsFloor, "queue/floor", "≥ 0.5×", vsFloor.Median >= 0.5, Limits.Case9Steady));

        // The writer's own rate in steady state: after the warm-up two recycled spares are ready; append exactly two
        // segments' worth, so both rolls take one and no fresh page is touched (what the 10 M run gets while spares last).
        long within = 2 * PerSegment(64);
        var (spares, spareStream) = Stats.Interleave(reps, () => Steady(ctx, 64, within), () => Case3FileStream.StreamAppend(ctx, 64, within, flush: false).Append);
        var spareFloor = Enumerable.Range(0, reps).Select(_ => Case1Floor.Floor(floorBuffer, 64, within)).ToList();
        var sRatio = Spread.Of(spares.Zip(spareStream, (q, s) => s / q.Seconds));
        var sFloor = Spread.Of(spares.Zip(spareFloor, (q, f) => f / q.Seconds));
        ctx.Report.Add(new Row("9", $"  {within / 1000} k × 64 B (two segments) after the warm-up: rolls only into recycled segments",
            Describe(spares, within), $"{Rate(spareStream, within)} M rec/s (FileStream log); floor {Rate(spareFloor, within)} M rec/s",
            sRatio, "queue/FileStream", "(reported)", null, $"queue/floor {sFloor.Format("0.00")}. " + Limits.Case9Spares));

        foreach (long segment in new[] { 64L << 20, 1L << 30 })
        {
            var (grow, s) = Stats.Interleave(reps, () => Growing(ctx, 64, n64, segment), () => Case3FileStream.StreamAppend(ctx, 64, n64, flush: false).Append);
            var ratio = Spread.Of(grow.Zip(s, (q, st) => st / q.Seconds));
            ctx.Report.Add(new Row("9", $"{Count(n64)} × 64 B, 1 thread, no consumer (growing queue), {(segment >> 20 >= 1024 ? "1 GiB" : $"{segment >> 20} MiB")} segments",
                Describe(grow, n64), $"{Rate(s, n64)} M rec/s (FileStream log, no flush)",
                ratio, "queue/FileStream", "≥ 1.5×", ratio.Median >= 1.5, Limits.Case9Growing));
        }

        var (big, bigStream) = Stats.Interleave(reps, () => Steady(ctx, 1024, n1k), () => Case3FileStream.StreamAppend(ctx, 1024, n1k, flush: false).Append);
        var bigRatio = Spread.Of(big.Zip(bigStream, (q, s) => s / q.Seconds));
        ctx.Report.Add(new Row("9", $"{Count(n1k)} × 1 KiB, steady state (a consumer keeping up, recycling)",
            Describe(big, n1k), $"{Rate(bigStream, n1k)} M rec/s (FileStream log, no flush)",
            bigRatio, "queue/FileStream", "≥ 2×", bigRatio.Median >= 2, Limits.Case9Large));
    }

    /// <summary>The growing queue with and without MADV_HUGEPAGE on new segments, alternating in one run.</summary>
    private static void HugePagesAB(BenchContext ctx, int reps, long n)
    {
        foreach (long segment in new[] { 64L << 20, 1L << 30 })
        {
            Sample With(bool on)
            {
                Storage.SegmentFiles.AdviseHugePages = on;
                try { return Growing(ctx, 64, n, segment); }
                finally { Storage.SegmentFiles.AdviseHugePages = false; }
            }
            var (on, off) = Stats.Interleave(reps, () => With(true), () => With(false));
            var ratio = Spread.Of(on.Zip(off, (a, b) => b.Seconds / a.Seconds));
            ctx.Report.Add(new Row("9", $"experiment: growing queue, {segment >> 20} MiB segments, MADV_HUGEPAGE on new segments",
                Describe(on, n), Describe(off, n) + " (without)", ratio, "with/without", "(reported)", null, Limits.Case9Growing));
        }
    }

    private static long PerSegment(int size) =>
        (MmapQueueOptions.DefaultSegmentSizeBytes - SegmentLayout.FirstRecordOffset) / SegmentLayout.FrameLength(size);

    private static string Count(long n) => n >= 1_000_000 ? $"{n / 1_000_000} M" : $"{n / 1000} k";

    private static string Rate(IEnumerable<double> seconds, long n) => Spread.Of(seconds.Select(t => n / t)).Format("0.0", 1e-6);

    private static string Describe(List<Sample> runs, long n) =>
        $"{Rate(runs.Select(r => r.Seconds), n)} M rec/s; writer minor faults {Spread.Of(runs.Select(r => (double)r.WriterFaults)).Format("0")}; " +
        $"rolls {Spread.Of(runs.Select(r => (double)r.Rolls)).Format("0")}, into recycled segments {Spread.Of(runs.Select(r => (double)r.RecycledRolls)).Format("0")}";

    /// <summary>
    /// Default options and a named consumer on another thread that reads (CRC checked) and commits every 16 MiB of
    /// frames. Three segments' worth is appended and consumed first, untimed, so the rolls timed afterwards find
    /// recycled spares (the steady state); then <paramref name="n"/> appends are timed on this thread.
    /// </summary>
    private static Sample Steady(BenchContext ctx, int size, long n)
    {
        string dir = ctx.NewPath("case9-steady");
        byte[] payload = BenchContext.Payload(size);
        try
        {
            using var q = new MmapQueue(dir, new MmapQueueOptions());
            long perSegment = PerSegment(size);
            long commitEvery = Math.Max(1, (16L << 20) / SegmentLayout.FrameLength(size));
            long end = long.MaxValue; // the consumer stops once it has read up to here and committed
            var consumer = new Thread(() =>
            {
                using var r = q.OpenReader("bench");
                long uncommitted = 0;
                while (true)
                {
                    if (r.TryRead(out _))
                    {
                        if (++uncommitted >= commitEvery) { r.Commit(); uncommitted = 0; }
                        continue;
                    }
                    if (uncommitted > 0) { r.Commit(); uncommitted = 0; }
                    if (r.NextSequence >= Volatile.Read(ref end)) return;
                    Thread.Yield();
                }
            }) { Name = "case9-consumer" };
            consumer.Start();
            for (long i = 0; i < 3 * perSegment; i++) q.Enqueue(payload); // warm-up: rolls, frees and recycles
            while (q.FirstSequence < 2 * perSegment) Thread.Sleep(1);
            q.WaitForBackgroundWork();
            Thread.Sleep(200);
            long rolls0 = q.SparesTaken, recycled0 = q.RecycledRolls;
            long faults0 = WriterMinorFaults();
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < n; i++) q.Enqueue(payload);
            double seconds = sw.Elapsed.TotalSeconds;
            long faults = WriterMinorFaults() - faults0;
            Volatile.Write(ref end, q.NextSequence);
            consumer.Join();
            return new Sample(seconds, faults, q.SparesTaken - rolls0, q.RecycledRolls - recycled0);
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }

    /// <summary>Default options but the segment size, no consumer: every segment is new to the page cache.</summary>
    private static Sample Growing(BenchContext ctx, int size, long n, long segmentSize)
    {
        string dir = ctx.NewPath("case9-growing");
        byte[] payload = BenchContext.Payload(size);
        try
        {
            using var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = segmentSize });
            Thread.Sleep(300); // as case 1: the first spare is prepared in the background, not timed
            long rolls0 = q.SparesTaken;
            long faults0 = WriterMinorFaults();
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < n; i++) q.Enqueue(payload);
            double seconds = sw.Elapsed.TotalSeconds;
            return new Sample(seconds, WriterMinorFaults() - faults0, q.SparesTaken - rolls0, q.RecycledRolls);
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }

    /// <summary>Minor page faults of the calling thread so far (field 10 of <c>/proc/thread-self/stat</c>).</summary>
    internal static long WriterMinorFaults()
    {
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // f[0] is field 3 (state)
        return long.Parse(f[10 - 3], CultureInfo.InvariantCulture);
    }
}
