using System.Diagnostics;

namespace MmapQueues.OpenTime;

/// <summary>
/// Issue 11's open rows: a flushed 2 GiB queue of 1 KiB records, with 1 GiB and with 64 MiB segments,
/// opened to its first record read, warm and cold (page cache dropped before each open; needs root), and
/// opened cold after a kill that left an unflushed tail (a child process appends, then SIGKILLs itself).
/// Public API only, so the same file measures the code before the change.
/// </summary>
internal static class OpenAfterClose
{
    private const int PayloadBytes = 1024;
    private const int FrameBytes = PayloadBytes + 8;

    /// <summary>
    /// Records the child appends past the watermark before it kills itself (16 MiB of frames: five kills
    /// still fit in the 1 GiB tail, so every run walks the same tail).
    /// </summary>
    public const int KillTailRecords = (16 << 20) / FrameBytes;

    public static void Run(string root, int runs)
    {
        bool canDrop = Environment.UserName == "root" && File.Exists("/proc/sys/vm/drop_caches");
        if (!canDrop) Console.WriteLine("not root: the cold rows are skipped (they drop the page cache)");
        Console.WriteLine($"segment | case | constructor median (min..max) ms | to first record median (min..max) ms | runs");
        foreach (long segment in new[] { 1L << 30, 64L << 20 })
        {
            string dir = Path.Combine(root, $"seg{segment >> 20}m");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            try
            {
                var options = new MmapQueueOptions { SegmentSizeBytes = segment, FlushMode = FlushMode.Async };
                long records = Fill(dir, options, (long)((2L << 30) * 0.95) / FrameBytes); // the tail segment mostly full
                string label = segment >= 1L << 30 ? $"{segment >> 30} GiB" : $"{segment >> 20} MiB";
                Report(label, $"flushed {records:N0} x 1 KiB, warm", Measure(dir, options, runs, cold: false, kill: false));
                if (!canDrop) continue;
                Report(label, "flushed, cold", Measure(dir, options, runs, cold: true, kill: false));
                Report(label, $"after a kill ({KillTailRecords:N0} records unflushed), cold", Measure(dir, options, runs, cold: true, kill: true));
                if (segment < 1L << 30) continue;
                // The same kill at the start of a fresh tail segment: the remnant scan past the walk reads ~1 GiB of zeros.
                Directory.Delete(dir, recursive: true);
                Fill(dir, options, 2 * ((segment - 64) / FrameBytes) + 1000);
                Report(label, "after a kill, fresh tail segment (~1 GiB of zeros past the records), cold", Measure(dir, options, runs, cold: true, kill: true));
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    /// <summary>Appends <paramref name="records"/> 1 KiB records, flushed by Dispose.</summary>
    private static long Fill(string dir, MmapQueueOptions options, long records)
    {
        var sw = Stopwatch.StartNew();
        var payload = new byte[PayloadBytes];
        Random.Shared.NextBytes(payload);
        using (var q = new MmapQueue(dir, options))
        {
            for (long i = 0; i < records; i++) q.Enqueue(payload);
        }
        Console.WriteLine($"# filled {dir}: {records:N0} records, {Directory.GetFiles(dir, "*.seg").Length} segments, {sw.Elapsed.TotalSeconds:F1} s");
        return records;
    }

    private static (List<double> Ctor, List<double> First) Measure(string dir, MmapQueueOptions options, int runs, bool cold, bool kill)
    {
        var ctor = new List<double>();
        var first = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            if (kill) AppendAndKill(dir, options.SegmentSizeBytes);
            if (cold) DropCaches();
            var sw = Stopwatch.StartNew();
            using var q = new MmapQueue(dir, options);
            ctor.Add(sw.Elapsed.TotalMilliseconds);
            using (var reader = q.OpenReader(q.FirstSequence))
                if (!reader.TryRead(out _)) throw new InvalidOperationException("the first record is missing");
            first.Add(sw.Elapsed.TotalMilliseconds);
        }
        return (ctor, first);
    }

    /// <summary>A child process opens the queue, appends <see cref="KillTailRecords"/> records (never flushed) and SIGKILLs itself.</summary>
    private static void AppendAndKill(string dir, long segmentSize)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        foreach (string a in new[] { "kill-child", dir, segmentSize.ToString() }) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        if (!child.WaitForExit(TimeSpan.FromMinutes(5))) throw new TimeoutException("the kill child did not finish");
        if (child.ExitCode != 137 && child.ExitCode != -1 && child.ExitCode != 128 + 9)
            Console.WriteLine($"# kill child exit code {child.ExitCode}");
    }

    /// <summary>The child's side of <see cref="AppendAndKill"/>.</summary>
    public static void ChildAppendsAndKillsItself(string dir, long segmentSize)
    {
        var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = segmentSize, FlushMode = FlushMode.Async });
        var payload = new byte[PayloadBytes];
        Random.Shared.NextBytes(payload);
        for (int i = 0; i < KillTailRecords; i++) q.Enqueue(payload);
        Process.GetCurrentProcess().Kill(); // SIGKILL: no flush, no Dispose
    }

    private static void DropCaches()
    {
        using (var sync = Process.Start("sync")) sync.WaitForExit();
        File.WriteAllText("/proc/sys/vm/drop_caches", "3");
    }

    private static void Report(string segment, string what, (List<double> Ctor, List<double> First) m) =>
        Console.WriteLine($"{segment} | {what} | {Median(m.Ctor):F1} ({m.Ctor.Min():F1}..{m.Ctor.Max():F1}) | " +
                          $"{Median(m.First):F1} ({m.First.Min():F1}..{m.First.Max():F1}) | {m.Ctor.Count}");

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s[s.Length / 2];
    }
}
