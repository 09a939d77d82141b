namespace MmapQueues.Tests;

/// <summary>A fact that runs only where strace can trace this process; otherwise skipped with the reason.</summary>
public sealed class RequiresStraceFactAttribute : FactAttribute
{
    public RequiresStraceFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "strace checks need Linux";
        else if (Which("strace") is null) Skip = "strace is not installed (apt-get install strace; .ci/run does it)";
    }

    public static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}
