using System.Diagnostics;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// The side-by-side harness: <c>compare [--quick] [--no-write] [--cases 1,4,6] [--dir PATH] [--out FILE]</c>.
/// Runs every case against its reference in this process, prints the ratios, and (for a full run of all
/// cases) rewrites its section of benchmarks/RESULTS.md and the SVG charts beside it.
/// </summary>
internal static class Harness
{
    private static readonly (string Id, Action<BenchContext> Run)[] Cases =
    {
        ("1", Case1Floor.Run),
        ("sweep", Case1Floor.Sweep),
        ("2", Case2Sustained.Run),
        ("3", Case3FileStream.Run),
        ("4", Case4Sync.Run),
        ("5", Case5Read.Run),
        ("6", Case6EndToEnd.Run),
        ("7", Case7Export.Run),
        ("8", Case8Allocation.Run),
        ("9", Case9Recycle.Run),
    };

    public static int Run(string[] args)
    {
        bool quick = args.Contains("--quick");
        bool write = !args.Contains("--no-write");
        string? only = Value(args, "--cases");
        string root = Value(args, "--dir") ?? Path.Combine(Path.GetTempPath(), $"mmapq-bench-{Environment.ProcessId}");
        string results = Value(args, "--out") ?? Path.Combine(RepoRoot(), "benchmarks", "RESULTS.md");
        string[] selected = only?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? Cases.Select(c => c.Id).ToArray();
        string[] unknown = selected.Except(Cases.Select(c => c.Id)).ToArray();
        if (unknown.Length > 0)
        {
            Console.Error.WriteLine($"unknown case(s) {string.Join(", ", unknown)}; known: {string.Join(", ", Cases.Select(c => c.Id))}");
            return 2;
        }
        if (only is not null && write && !args.Contains("--write"))
        {
            write = false;
            Console.WriteLine("(a subset of cases: RESULTS.md is not rewritten; add --write to force)");
        }

        string command = ("dotnet run -c Release --project benchmarks -- compare " + string.Join(" ", args)).TrimEnd();
        string loadBefore = ResultsWriter.LoadAverage();
        var sw = Stopwatch.StartNew();
        using var ctx = new BenchContext(quick, root);
        Console.WriteLine($"scratch: {root}{(quick ? " (quick: tiny sizes, one repetition)" : "")}");
        if (!quick) JitWarmUp.Run(ctx);
        foreach (var (id, run) in Cases.Where(c => selected.Contains(c.Id)))
            run(ctx);
        Console.WriteLine($"done in {sw.Elapsed.TotalSeconds:0.0} s");
        if (write && (!quick || args.Contains("--write")))
            ResultsWriter.Write(results, root, ctx.Report, command, loadBefore, ResultsWriter.LoadAverage(), sw.Elapsed);
        else if (write)
            Console.WriteLine("(quick run: RESULTS.md is not rewritten; add --write to force)");
        return 0;
    }

    private static string? Value(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MmapQueue.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
