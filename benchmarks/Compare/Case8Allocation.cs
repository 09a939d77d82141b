namespace MmapQueues.Benchmarks.Compare;

/// <summary>Case 8: bytes allocated per Enqueue (span and claim-style) and per TryRead after warm-up.</summary>
internal static class Case8Allocation
{
    private static readonly System.Buffers.SpanAction<byte, byte[]> CopyPayload = static (span, p) => p.CopyTo(span);

    public static void Run(BenchContext ctx)
    {
        Console.WriteLine("Case 8: allocation per operation");
        int n = ctx.Quick ? 10_000 : 1_000_000;
        string dir = ctx.NewPath("case8-queue");
        byte[] payload = BenchContext.Payload(64);
        try
        {
            using var q = BenchContext.OpenQueue(dir, FlushMode.Async);
            for (int i = 0; i < 10_000; i++) { q.Enqueue(payload); q.Enqueue(64, payload, CopyPayload); }
            using (var warm = q.OpenReader()) while (warm.TryRead(out _)) { }

            double enqueue = PerOp(n, () => { for (int i = 0; i < n; i++) q.Enqueue(payload); });
            double claim = PerOp(n, () => { for (int i = 0; i < n; i++) q.Enqueue(64, payload, CopyPayload); });
            using var reader = q.OpenReader();
            for (int i = 0; i < 20_000; i++) reader.TryRead(out _); // warm-up reads (the reader object itself is allocated before)
            double read = PerOp(n, () => { for (int i = 0; i < n; i++) reader.TryRead(out _); });
            var zero = new Spread(0, 0, 0, 1);
            ctx.Report.Add(new Row("8", $"bytes allocated per operation after warm-up ({n:N0} operations of 64 B each)",
                $"Enqueue {enqueue:0.####} B, claim Enqueue {claim:0.####} B, TryRead {read:0.####} B", "0 B", zero, "-",
                "0 B/op in steady state", enqueue < 0.01 && claim < 0.01 && read < 0.01, Limits.Case8));
        }
        finally
        {
            BenchContext.Delete(dir);
        }
    }

    private static double PerOp(int n, Action body)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        body();
        return (GC.GetAllocatedBytesForCurrentThread() - before) / (double)n;
    }
}
