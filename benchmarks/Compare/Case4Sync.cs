using System.Diagnostics;
using MmapQueues.Benchmarks.Native;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Case 4: sync mode. One producer's Enqueue latency against pwrite 4 KiB + fdatasync into a fallocated
/// file (the same unwritten-extent situation a fresh segment is in); group commit with 8 producers
/// against one.
/// </summary>
internal static class Case4Sync
{
    private const int PayloadSize = 64;

    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("Case 4: sync latency vs pwrite+fdatasync; group commit");
        int samples = ctx.Quick ? 20 : 2000;
        var (q, p) = Stats.Interleave(ctx.Reps(3),
            () => Case3FileStream.QueueSyncLatency(ctx, PayloadSize, samples), () => PwriteLatency(ctx, samples));
        var p50 = Spread.Of(q.Zip(p, (a, b) => (double)Stats.Percentile(a, 50) / Stats.Percentile(b, 50)));
        var p99 = Spread.Of(q.Zip(p, (a, b) => (double)Stats.Percentile(a, 99) / Stats.Percentile(b, 99)));
        ctx.Report.Add(new Row("4", "sync Enqueue 64 B, 1 producer: p50",
            $"{Spread.Of(q.Select(a => (double)Stats.Percentile(a, 50))).Format("0", 1e-3)} µs",
            $"{Spread.Of(p.Select(a => (double)Stats.Percentile(a, 50))).Format("0", 1e-3)} µs (pwrite 4 KiB + fdatasync)",
            p50, "queue/pwrite", "≤ 1.3×", p50.Median <= 1.3, Limits.Case4Latency));
        ctx.Report.Add(new Row("4", "sync Enqueue 64 B, 1 producer: p99",
            $"{Spread.Of(q.Select(a => (double)Stats.Percentile(a, 99))).Format("0", 1e-3)} µs",
            $"{Spread.Of(p.Select(a => (double)Stats.Percentile(a, 99))).Format("0", 1e-3)} µs",
            p99, "queue/pwrite", "(reported)", null, "Same limits as p50; the tail is the device cache flush and other agents' I/O."));
        ctx.Report.Latencies["case4"] = new List<Distribution>
        {
            new("MmapQueue sync Enqueue (64 B)", q.OrderBy(a => Stats.Percentile(a, 50)).ElementAt(q.Count / 2)),
            new("pwrite 4 KiB + fdatasync", p.OrderBy(a => Stats.Percentile(a, 50)).ElementAt(p.Count / 2)),
        };

        double seconds = ctx.Quick ? 0.1 : 1.0;
        var (g8, g1) = Stats.Interleave(ctx.Reps(3), () => GroupCommit(ctx, 8, seconds), () => GroupCommit(ctx, 1, seconds));
        var gain = Spread.Of(g8.Zip(g1, (a, b) => a / b));
        ctx.Report.Add(new Row("4", "group commit: sync throughput, 8 producers vs 1",
            $"{Spread.Of(g8).Format("0", 1e-3)} k rec/s (8 threads)", $"{Spread.Of(g1).Format("0", 1e-3)} k rec/s (1 thread)",
            gain, "8 threads/1 thread", "≥ 5×", gain.Median >= 5, Limits.Case4Group));
    }

    private static long[] PwriteLatency(BenchContext ctx, int samples)
    {
        string path = ctx.NewPath("case4-pwrite.dat");
        using var page = new AlignedBuffer(4096);
        var lat = new long[samples];
        int warm = Math.Min(100, samples);
        int fd = Posix.Check(Posix.open(path, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_CLOEXEC, 0x1A4), $"open {path}");
        try
        {
            Posix.Check(Posix.fallocate(fd, 0, 0, (long)(samples + warm) * 4096), $"fallocate {path}");
            Posix.Check(Posix.fdatasync(fd), $"fdatasync {path}");
            long off = 0;
            for (int i = -warm; i < samples; i++, off += 4096)
            {
                long t0 = Stopwatch.GetTimestamp();
                Posix.PwriteAll(fd, page.Address, 4096, off, path);
                Posix.Check(Posix.fdatasync(fd), $"fdatasync {path}");
                if (i >= 0) lat[i] = (long)Stats.Ns(Stopwatch.GetTimestamp() - t0);
            }
        }
        finally
        {
            Posix.close(fd);
            BenchContext.Delete(path);
        }
        Array.Sort(lat);
        return lat;
    }

    /// <summary>Records per second made durable by <paramref name="threads"/> sync-mode producers in <paramref name="seconds"/>.</summary>
    internal static double GroupCommit(BenchContext ctx, int threads, double seconds)
    {
        string dir = ctx.NewPath($"case4-group{threads}");
        byte[] payload = BenchContext.Payload(PayloadSize);
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Sync);
            long count = 0;
            bool stop = false;
            using var start = new Barrier(threads + 1);
            var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
            {
                long mine = 0;
                start.SignalAndWait();
                while (!Volatile.Read(ref stop)) { q.Enqueue(payload); mine++; }
                Interlocked.Add(ref count, mine);
            }) { IsBackground = true }).ToList();
            workers.ForEach(t => t.Start());
            start.SignalAndWait();
            var sw = Stopwatch.StartNew();
            Thread.Sleep(TimeSpan.FromSeconds(seconds));
            Volatile.Write(ref stop, true);
            workers.ForEach(t => t.Join());
            return count / sw.Elapsed.TotalSeconds;
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }
}
