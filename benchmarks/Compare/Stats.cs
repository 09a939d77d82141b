namespace MmapQueues.Benchmarks.Compare;

/// <summary>A figure over repetitions: the median and the range (min..max).</summary>
internal readonly record struct Spread(double Median, double Min, double Max, int Count)
{
    public static Spread Of(IEnumerable<double> values)
    {
        double[] v = values.Order().ToArray();
        if (v.Length == 0) return new(double.NaN, double.NaN, double.NaN, 0);
        double median = v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
        return new(median, v[0], v[^1], v.Length);
    }

    /// <summary>"median (min–max)" with the given format, or just the median for one repetition.</summary>
    public string Format(string format, double scale = 1) =>
        Count <= 1
            ? (Median * scale).ToString(format)
            : $"{(Median * scale).ToString(format)} ({(Min * scale).ToString(format)}–{(Max * scale).ToString(format)})";
}

internal static class Stats
{
    /// <summary>The p-th percentile (0..100) of sorted samples, nearest rank.</summary>
    public static long Percentile(ReadOnlySpan<long> sorted, double p)
    {
        if (sorted.Length == 0) return 0;
        long rank = (long)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[(int)Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>
    /// Runs <paramref name="a"/> and <paramref name="b"/> <paramref name="reps"/> times, alternating which goes
    /// first. With <paramref name="warmUp"/> both run once more first, untimed, and the JIT gets a moment to
    /// install its optimized code (tiered compilation promotes hot methods about 100 ms after they settle).
    /// </summary>
    public static (List<TA> A, List<TB> B) Interleave<TA, TB>(int reps, Func<TA> a, Func<TB> b, bool warmUp = true)
    {
        if (warmUp && reps > 1)
        {
            a();
            b();
            Thread.Sleep(200);
        }
        var ra = new List<TA>(reps);
        var rb = new List<TB>(reps);
        for (int i = 0; i < reps; i++)
        {
            if (i % 2 == 0) { ra.Add(a()); rb.Add(b()); }
            else { rb.Add(b()); ra.Add(a()); }
        }
        return (ra, rb);
    }

    public static double Ns(long stopwatchTicks) => stopwatchTicks * (1e9 / System.Diagnostics.Stopwatch.Frequency);
}
