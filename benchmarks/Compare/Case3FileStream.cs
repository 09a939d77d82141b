using System.Diagnostics;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>Case 3: the queue against a FileStream append log, async (throughput) and sync (latency).</summary>
internal static class Case3FileStream
{
    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("Case 3: queue vs FileStream log");
        long budget = ctx.Size(256L << 20, 4L << 20);
        int reps = ctx.Reps(5);
        foreach (int size in new[] { 64, 1024 })
        {
            long n = budget / SegmentLayout.FrameLength(size);
            var (q, s) = Stats.Interleave(reps, () => QueueAppend(ctx, size, n), () => StreamAppend(ctx, size, n, flush: true));
            var ratio = Spread.Of(q.Zip(s, (qt, st) => st.Total / qt.Total));
            var appendRatio = Spread.Of(q.Zip(s, (qt, st) => st.Append / qt.Append));
            double target = size == 64 ? 2 : 3;
            ctx.Report.Add(new Row("3", $"append {Label(size)} + one final flush, async",
                $"{Spread.Of(q.Select(t => n / t.Total)).Format("0.0", 1e-6)} M rec/s",
                $"{Spread.Of(s.Select(t => n / t.Total)).Format("0.0", 1e-6)} M rec/s",
                ratio, "queue/FileStream", $"≥ {target}×", ratio.Median >= target,
                size == 64 ? Limits.Case3Small : Limits.Case3Large));
            ctx.Report.Add(new Row("3", $"  the same, append phase only (before the final flush)",
                $"{Spread.Of(q.Select(t => n / t.Append)).Format("0.0", 1e-6)} M rec/s",
                $"{Spread.Of(s.Select(t => n / t.Append)).Format("0.0", 1e-6)} M rec/s",
                appendRatio, "queue/FileStream", "(reported)", null,
                size == 64 ? Limits.Case3SmallAppend : Limits.Case3LargeAppend));
        }

        int samples = ctx.Quick ? 20 : 1000;
        var (qs, ss) = Stats.Interleave(ctx.Reps(3), () => QueueSyncLatency(ctx, 64, samples), () => StreamSyncLatency(ctx, 64, samples));
        var p50 = Spread.Of(qs.Zip(ss, (a, b) => (double)Stats.Percentile(a, 50) / Stats.Percentile(b, 50)));
        ctx.Report.Add(new Row("3", "sync: p50 latency per 64 B record",
            $"p50 {Spread.Of(qs.Select(a => (double)Stats.Percentile(a, 50))).Format("0", 1e-3)} µs",
            $"p50 {Spread.Of(ss.Select(a => (double)Stats.Percentile(a, 50))).Format("0", 1e-3)} µs (Write + Flush(true))",
            p50, "queue/FileStream", "< 1×", p50.Median < 1, Limits.Case3Sync));
    }

    private static string Label(int size) => size >= 1024 ? $"{size / 1024} KiB" : $"{size} B";

    private static (double Append, double Total) QueueAppend(BenchContext ctx, int size, long n)
    {
        string dir = ctx.NewPath("case3-queue");
        byte[] payload = BenchContext.Payload(size);
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Async);
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < n; i++) q.Enqueue(payload);
            double append = sw.Elapsed.TotalSeconds;
            q.Flush();
            return (append, sw.Elapsed.TotalSeconds);
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }

    /// <summary>Appends n records to a new FileStream log; returns seconds for the appends and for appends + Flush(true).</summary>
    internal static (double Append, double Total) StreamAppend(BenchContext ctx, int size, long n, bool flush)
    {
        string path = ctx.NewPath("case3-stream.log");
        byte[] payload = BenchContext.Payload(size);
        try
        {
            using var log = new FileStreamLog(path);
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < n; i++) log.Append(payload);
            double append = sw.Elapsed.TotalSeconds;
            if (flush) log.FlushToDisk();
            return (append, sw.Elapsed.TotalSeconds);
        }
        finally
        {
            BenchContext.Delete(path);
        }
    }

    /// <summary>Sorted per-record latencies (ns) of sync-mode Enqueue, after a short warm-up.</summary>
    internal static long[] QueueSyncLatency(BenchContext ctx, int size, int samples)
    {
        string dir = ctx.NewPath("sync-queue");
        byte[] payload = BenchContext.Payload(size);
        var lat = new long[samples];
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Sync);
            for (int i = 0; i < Math.Min(100, samples); i++) q.Enqueue(payload);
            for (int i = 0; i < samples; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                q.Enqueue(payload);
                lat[i] = (long)Stats.Ns(Stopwatch.GetTimestamp() - t0);
            }
        }
        finally
        {
            BenchContext.Delete(dir);
        }
        Array.Sort(lat);
        return lat;
    }

    private static long[] StreamSyncLatency(BenchContext ctx, int size, int samples)
    {
        string path = ctx.NewPath("sync-stream.log");
        byte[] payload = BenchContext.Payload(size);
        var lat = new long[samples];
        try
        {
            using var log = new FileStreamLog(path);
            for (int i = 0; i < Math.Min(100, samples); i++) { log.Append(payload); log.FlushToDisk(); }
            for (int i = 0; i < samples; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                log.Append(payload);
                log.FlushToDisk();
                lat[i] = (long)Stats.Ns(Stopwatch.GetTimestamp() - t0);
            }
        }
        finally
        {
            BenchContext.Delete(path);
        }
        Array.Sort(lat);
        return lat;
    }
}
