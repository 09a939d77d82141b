using MmapQueues.Benchmarks.Native;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Runs every hot path a few times and then idles, twice, before the first timed case. Tiered compilation
/// promotes a hot method to optimized code only after ~100 ms without new tier-0 work, which a harness
/// that keeps starting new cases never offers: without this, a short case can be timed on unoptimized
/// TryRead (measured: 11-16 M rec/s instead of ~150 M). Disabling tiering instead would lose dynamic PGO,
/// which makes the read path ~17 % faster in a long-running process.
/// </summary>
internal static class JitWarmUp
{
    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("JIT warm-up (untimed)");
        using var floor = new AlignedBuffer(16L << 20);
        byte[] scratch = new byte[FileStreamLog.BufferSize + 64 * 1024];
        for (int round = 0; round < 2; round++)
        {
            foreach (int size in new[] { 64, 1024 })
            {
                long n = (8L << 20) / Format.SegmentLayout.FrameLength(size);
                Case1Floor.QueueAppend(ctx, size, n);
                Case1Floor.Floor(floor, size, n);
                Case3FileStream.StreamAppend(ctx, size, n, flush: false);
            }
            string dir = ctx.NewPath("warm-read");
            string log = ctx.NewPath("warm-read.log");
            try
            {
                byte[] payload = BenchContext.Payload(64);
                using (var q = BenchContext.OpenQueue(dir, FlushMode.Async))
                using (var w = new FileStreamLog(log))
                {
                    for (int i = 0; i < 100_000; i++) { q.Enqueue(payload); w.Append(payload); }
                    w.Dispose();
                    for (int i = 0; i < 20; i++)
                    {
                        Case5Read.QueueRead(q, 100_000);
                        Case5Read.BatchRead(q, 100_000);
                        FileStreamLog.ReadAll(log, scratch);
                    }
                }
            }
            finally
            {
                BenchContext.Delete(dir);
                BenchContext.Delete(log);
            }
            Thread.Sleep(500);
        }
    }
}
