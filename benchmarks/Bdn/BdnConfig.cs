using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using Perfolizer.Horology;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// The BenchmarkDotNet configuration: in-process (no per-run project build on a 2-core machine), short
/// iterations (each append benchmark writes to disk at up to GB/s, so a default 0.5 s iteration would
/// write many GiB), and the memory diagnoser everywhere.
/// </summary>
internal static class BdnConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddJob(Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithLaunchCount(1)
                .WithWarmupCount(3)
                .WithIterationCount(8)
                .WithIterationTime(TimeInterval.FromMilliseconds(150))
                .AsDefault())
            .AddDiagnoser(MemoryDiagnoser.Default)
;
}

/// <summary>A fresh scratch directory per benchmark instance, deleted on cleanup.</summary>
internal static class Scratch
{
    public static string NewDirectory(string name) =>
        Path.Combine(Path.GetTempPath(), "mmapq-bdn", $"{name}-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public static void Delete(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }
}

/// <summary>A queue in a fresh scratch directory; disposing closes the queue and deletes the directory.</summary>
internal sealed class ScratchQueue : IDisposable
{
    private readonly string _dir;

    public ScratchQueue(string name, MmapQueueOptions options)
    {
        _dir = Scratch.NewDirectory(name);
        Queue = new MmapQueue(_dir, options);
    }

    public MmapQueue Queue { get; }

    public void Dispose()
    {
        try
        {
            Queue.Dispose();
        }
        finally
        {
            Scratch.Delete(_dir); // GiB per benchmark sometimes: never leave it behind
        }
    }
}
