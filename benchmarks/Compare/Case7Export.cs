namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// Case 7: export of 1 GiB over loopback against raw sendfile, read+write and mmap+write. The export API
/// and its own benchmark (benchmarks/Export) come with the shipping issue; until that is on main this row
/// says so instead of measuring something else.
/// </summary>
internal static class Case7Export
{
    public static void Run(BenchContext ctx)
    {
        bool present = typeof(MmapQueue).Assembly.GetTypes().Any(t => t.GetMethods().Any(m => m.Name == "ExportTo"));
        ctx.Report.Add(new Row("7", "export 1 GiB over loopback (GB/s, sender CPU s/GB)",
            present ? "see \"Export over loopback (issue 4)\"" : "pending shipping",
            "raw sendfile, read+write, mmap+write", new Spread(double.NaN, double.NaN, double.NaN, 0), "-",
            "≥ 0.9× sendfile GB/s, ≤ 1.1× its CPU", null,
            present
                ? "Measured by the shipping issue's own program (benchmarks/Export), not duplicated here."
                : "ExportTo(Socket) is not on main yet; the shipping branch brings it with benchmarks/Export."));
    }
}
