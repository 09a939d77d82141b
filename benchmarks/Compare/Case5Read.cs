using System.Diagnostics;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Case 5: zero-copy read of 64 B records with CRC check, warm page cache, against the FileStream log read
/// back in 1 MiB chunks with its CRCs checked. Both files hold the same records and are read once before timing.
/// </summary>
internal static class Case5Read
{
    private const int PayloadSize = 64;

    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("Case 5: zero-copy read (TryRead, then batches) vs FileStream chunks");
        // 16 MiB of records stays in the CPU caches; 256 MiB streams from memory (both from the page cache).
        foreach (long budget in new[] { ctx.Size(16L << 20, 1L << 20), ctx.Size(256L << 20, 4L << 20) })
            Run(ctx, budget);
    }

    private static void Run(BenchContext ctx, long budget)
    {
        long n = budget / SegmentLayout.FrameLength(PayloadSize);
        string dir = ctx.NewPath("case5-queue");
        string log = ctx.NewPath("case5-stream.log");
        byte[] payload = BenchContext.Payload(PayloadSize);
        byte[] scratch = new byte[FileStreamLog.BufferSize + 64 * 1024];
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Async);
            using (var w = new FileStreamLog(log))
            {
                for (long i = 0; i < n; i++) { q.Enqueue(payload); w.Append(payload); }
            }
            QueueRead(q, n); // warm: both sets of pages in the cache, code jitted
            BatchRead(q, n);
            FileStreamLog.ReadAll(log, scratch);

            // Each repetition times TryRead, then batches, against the same FileStream read: one baseline for both rows.
            var (both, sr) = Stats.Interleave(ctx.Reps(5), () => (One: QueueRead(q, n), Batch: BatchRead(q, n)), () => StreamRead(log, scratch, n));
            AddRow(ctx, "5", $"read 64 B with CRC check, warm page cache, {budget >> 20} MiB of records",
                both.Select(b => b.One).ToList(), sr, n, budget > 64L << 20 ? Limits.Case5Memory : Limits.Case5);
            AddRow(ctx, "5b", $"batch read (TryReadBatch, 1024) 64 B with CRC check, warm page cache, {budget >> 20} MiB of records",
                both.Select(b => b.Batch).ToList(), sr, n, budget > 64L << 20 ? Limits.Case5BatchMemory : Limits.Case5Batch);
        }
        finally
        {
            BenchContext.Delete(dir);
            BenchContext.Delete(log);
        }
    }

    private static void AddRow(BenchContext ctx, string id, string what, List<(double Seconds, long Allocated)> qr,
        List<(double Seconds, long Allocated)> sr, long n, string limit)
    {
        var ratio = Spread.Of(qr.Zip(sr, (a, b) => b.Seconds / a.Seconds));
        double allocPerRecord = qr.Max(r => r.Allocated) / (double)n;
        ctx.Report.Add(new Row(id, what,
            $"{Spread.Of(qr.Select(r => n / r.Seconds)).Format("0.0", 1e-6)} M rec/s, {allocPerRecord:0.000} B allocated/record",
            $"{Spread.Of(sr.Select(r => n / r.Seconds)).Format("0.0", 1e-6)} M rec/s, {sr.Max(r => r.Allocated) / (double)n:0.000} B/record",
            ratio, "queue/FileStream", "≥ 1.2×, no allocation per record", ratio.Median >= 1.2 && allocPerRecord < 0.01, limit));
    }

    /// <summary>Reads n records from sequence 0 with a new reader; returns seconds and bytes allocated on this thread.</summary>
    internal static (double Seconds, long Allocated) QueueRead(MmapQueue q, long n)
    {
        long alloc = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        long count = 0, sum = 0;
        using (QueueReader r = q.OpenReader())
        {
            while (r.TryRead(out ReadOnlySpan<byte> p)) { count++; sum += p[0]; }
        }
        double s = sw.Elapsed.TotalSeconds;
        if (count != n) throw new InvalidOperationException($"read {count} records, expected {n} (checksum {sum})");
        return (s, GC.GetAllocatedBytesForCurrentThread() - alloc);
    }

    /// <summary>As <see cref="QueueRead"/>, with <see cref="QueueReader.TryReadBatch"/> (up to 1024 records a call).</summary>
    internal static (double Seconds, long Allocated) BatchRead(MmapQueue q, long n)
    {
        long alloc = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        long count = 0, sum = 0;
        using (QueueReader r = q.OpenReader())
        {
            while (r.TryReadBatch(out RecordBatch batch))
                foreach (RecordView record in batch) { count++; sum += record.Payload[0]; }
        }
        double s = sw.Elapsed.TotalSeconds;
        if (count != n) throw new InvalidOperationException($"read {count} records in batches, expected {n} (checksum {sum})");
        return (s, GC.GetAllocatedBytesForCurrentThread() - alloc);
    }

    private static (double Seconds, long Allocated) StreamRead(string log, byte[] scratch, long n)
    {
        long alloc = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        (long records, _) = FileStreamLog.ReadAll(log, scratch);
        double s = sw.Elapsed.TotalSeconds;
        if (records != n) throw new InvalidOperationException($"read {records} records from {log}, expected {n}");
        return (s, GC.GetAllocatedBytesForCurrentThread() - alloc);
    }
}
