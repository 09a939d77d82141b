using System.Diagnostics;
using MmapQueues.Benchmarks.Native;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Case 1: async append, one thread, against the floor: the same frames (payload copy + CRC32C + commit
/// word) written into a preheated buffer with no reservation, no atomics and no segments. Also the
/// throughput-by-size sweep for the chart.
/// </summary>
internal static class Case1Floor
{
    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("Case 1: async append vs copy+CRC floor");
        int reps = ctx.Reps(5);
        using var floorBuffer = new AlignedBuffer(64L << 20);
        // Two bursts: one that fits in the first segment (preheated before the clock starts: the append path
        // alone), and one four segments long (rolls onto spares the allocator preheats meanwhile).
        foreach ((long budget, string where) in new[] { (ctx.Size(48L << 20, 2L << 20), "within one segment"), (ctx.Size(256L << 20, 4L << 20), "across segment rolls") })
        foreach (int size in new[] { 64, 1024 })
        {
            long n = budget / SegmentLayout.FrameLength(size);
            var (q, f) = Stats.Interleave(reps, () => QueueAppend(ctx, size, n), () => Floor(floorBuffer, size, n));
            var qRate = Spread.Of(q.Select(s => n / s));
            var fRate = Spread.Of(f.Select(s => n / s));
            var ratio = Spread.Of(q.Zip(f, (qs, fs) => fs / qs));
            string queue = $"{qRate.Format("0.0", 1e-6)} M rec/s, {Spread.Of(q.Select(s => n * size / s)).Format("0.00", 1e-9)} GB/s";
            string floor = $"{fRate.Format("0.0", 1e-6)} M rec/s, {Spread.Of(f.Select(s => n * size / s)).Format("0.00", 1e-9)} GB/s";
            string what = $"append {(size == 64 ? "64 B" : "1 KiB")}, async, 1 thread, {budget >> 20} MiB {where}";
            bool rolls = where.StartsWith("across", StringComparison.Ordinal);
            if (size == 64)
                ctx.Report.Add(new Row("1", what, queue, floor, ratio, "queue/floor",
                    "≥ 30 M rec/s", qRate.Median >= 30e6, rolls ? Limits.Case1Rolls : Limits.Case1Small));
            else
                ctx.Report.Add(new Row("1", what, queue, floor, ratio, "queue/floor",
                    "≥ 0.5× floor bytes/s", ratio.Median >= 0.5, rolls ? Limits.Case1Rolls : Limits.Case1Large));
        }
    }

    /// <summary>Payload GB/s by size for queue, floor and the FileStream log (no final flush): the chart.</summary>
    public static void Sweep(BenchContext ctx)
    {
        Console.WriteLine("Sweep: throughput by payload size");
        long budget = ctx.Size(48L << 20, 1L << 20); // within the first, preheated segment: the append path
        int reps = ctx.Reps(3);
        using var floorBuffer = new AlignedBuffer(64L << 20);
        var queue = new SizeCurve("MmapQueue (async, within one preheated segment)", new());
        var floor = new SizeCurve("floor: copy + CRC32C into a preheated buffer", new());
        var stream = new SizeCurve("FileStream log (1 MiB buffer, no flush)", new());
        foreach (int size in new[] { 16, 64, 256, 1024, 4096, 16384, 65536 })
        {
            long n = Math.Max(16, budget / SegmentLayout.FrameLength(size));
            double bytes = (double)n * size;
            var (q, f) = Stats.Interleave(reps, () => QueueAppend(ctx, size, n), () => Floor(floorBuffer, size, n));
            var s = Enumerable.Range(0, reps).Select(_ => Case3FileStream.StreamAppend(ctx, size, n, flush: false).Append).ToList();
            queue.GBps[size] = Spread.Of(q.Select(t => bytes / t)).Median / 1e9;
            floor.GBps[size] = Spread.Of(f.Select(t => bytes / t)).Median / 1e9;
            stream.GBps[size] = Spread.Of(s.Select(t => bytes / t)).Median / 1e9;
            Console.WriteLine($"  {size,6} B: queue {queue.GBps[size]:0.00} GB/s, floor {floor.GBps[size]:0.00}, FileStream {stream.GBps[size]:0.00}");
        }
        ctx.Report.Curves.AddRange(new[] { floor, queue, stream });
    }

    /// <summary>Seconds to append <paramref name="n"/> records to a fresh async queue (setup and dispose not timed).</summary>
    internal static double QueueAppend(BenchContext ctx, int size, long n)
    {
        string dir = ctx.NewPath("case1");
        byte[] payload = BenchContext.Payload(size);
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Async);
            Thread.Sleep(300); // the allocator preheats the first spare in the background: do not time that start-up
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < n; i++) q.Enqueue(payload);
            return sw.Elapsed.TotalSeconds;
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }

    /// <summary>The floor: frame n records (copy, CRC32C over sequence+word+payload, commit word) into a preheated buffer.</summary>
    internal static double Floor(AlignedBuffer buffer, int size, long n)
    {
        byte[] payload = BenchContext.Payload(size);
        Span<byte> b = buffer.Span;
        int frame = SegmentLayout.FrameLength(size);
        uint word = SegmentLayout.RecordWord(size);
        var sw = Stopwatch.StartNew();
        int off = 0;
        for (long seq = 0; seq < n; seq++)
        {
            if (off + frame > b.Length) off = 0;
            payload.CopyTo(b.Slice(off + SegmentLayout.RecordHeaderSize, size));
            Frames.WriteCrc(b, off, seq, word, size);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b[off..], word);
            off += frame;
        }
        return sw.Elapsed.TotalSeconds;
    }
}
