using System.Diagnostics;
using MmapQueues.Benchmarks.Native;
using MmapQueues.Format;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Case 2: several GiB appended with interval flush and made durable at the end, against the disk's
/// limit: fallocate + O_DIRECT 4 MiB sequential writes of the same number of bytes, then fdatasync.
/// </summary>
internal static class Case2Sustained
{
    private const int PayloadSize = 1024;
    private const int ChunkSize = 4 << 20;

    public static void Run(BenchContext ctx)
    {
        long total = ctx.Size(4L << 30, 32L << 20);
        var drive = new DriveInfo(ctx.Root);
        if (drive.AvailableFreeSpace < 3 * total)
        {
            ctx.Report.Note($"case 2 skipped: {drive.AvailableFreeSpace >> 30} GiB free under {ctx.Root}, need {3 * total >> 30} GiB");
            return;
        }
        Console.WriteLine($"Case 2: sustained append of {total >> 20} MiB vs O_DIRECT");
        int frame = SegmentLayout.FrameLength(PayloadSize);
        long n = total / frame;
        long bytes = n * frame;
        var (q, d) = Stats.Interleave(ctx.Reps(3), () => Queue(ctx, n), () => Direct(ctx, bytes), warmUp: false);
        var qRate = Spread.Of(q.Select(t => bytes / t));
        var dRate = Spread.Of(d.Select(t => bytes / t));
        var ratio = Spread.Of(q.Zip(d, (qt, dt) => dt / qt));
        ctx.Report.Add(new Row("2", $"sustained append {total >> 20} MiB of 1 KiB records, interval flush, then durable",
            $"{qRate.Format("0.00", 1e-9)} GB/s", $"{dRate.Format("0.00", 1e-9)} GB/s (fallocate + O_DIRECT 4 MiB + fdatasync)",
            ratio, "queue/O_DIRECT", "≥ 0.8×", ratio.Median >= 0.8, Limits.Case2));
    }

    /// <summary>Seconds from the first Enqueue until Flush returns (everything durable).</summary>
    private static double Queue(BenchContext ctx, long n)
    {
        string dir = ctx.NewPath("case2-queue");
        byte[] payload = BenchContext.Payload(PayloadSize);
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Interval);
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < n; i++) q.Enqueue(payload);
            q.Flush();
            return sw.Elapsed.TotalSeconds;
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }

    /// <summary>Seconds to fallocate, write <paramref name="bytes"/> with O_DIRECT in 4 MiB writes, and fdatasync.</summary>
    private static double Direct(BenchContext ctx, long bytes)
    {
        string path = ctx.NewPath("case2-direct.dat");
        using var buffer = new AlignedBuffer(ChunkSize);
        long rounded = (bytes + ChunkSize - 1) / ChunkSize * ChunkSize;
        int fd = Posix.Check(Posix.open(path, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_DIRECT | Posix.O_CLOEXEC, 0x1A4), $"open {path} O_DIRECT");
        try
        {
            var sw = Stopwatch.StartNew();
            Posix.Check(Posix.fallocate(fd, 0, 0, rounded), $"fallocate {path}");
            for (long off = 0; off < rounded; off += ChunkSize)
                Posix.PwriteAll(fd, buffer.Address, ChunkSize, off, path);
            Posix.Check(Posix.fdatasync(fd), $"fdatasync {path}");
            return sw.Elapsed.TotalSeconds;
        }
        finally
        {
            Posix.close(fd);
            BenchContext.Delete(path);
        }
    }
}
