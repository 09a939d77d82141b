using System.Globalization;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// How long the crash suite runs. By default a bounded number of cycles that keeps the whole suite within
/// a few minutes in CI; <c>MMAPQ_CRASH_CYCLES=N</c> sets the cycles per mode, <c>MMAPQ_CRASH_SOAK=1</c> runs
/// a long soak (20 times the default), <c>MMAPQ_CRASH_SEED=N</c> replays a seed printed by a failed run.
/// </summary>
internal static class CrashSettings
{
    public static int Cycles(int ciDefault)
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("MMAPQ_CRASH_CYCLES"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0)
            return n;
        return Environment.GetEnvironmentVariable("MMAPQ_CRASH_SOAK") == "1" ? ciDefault * 20 : ciDefault;
    }

    public static int Seed(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("MMAPQ_CRASH_SEED"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int s)
            ? s : fallback;

    /// <summary>A fresh seed per run unless MMAPQ_CRASH_SEED pins one (crash timing is not reproducible anyway).</summary>
    public static int NewSeed() => Seed(Random.Shared.Next());
}
