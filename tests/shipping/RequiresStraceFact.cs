using System.Diagnostics;

namespace MmapQueues.Tests.Shipping;

/// <summary>A fact that skips, saying why, where strace is missing or cannot trace (no ptrace permission).</summary>
public sealed class RequiresStraceFactAttribute : FactAttribute
{
    private static readonly string? Missing = Probe();

    public RequiresStraceFactAttribute()
    {
        if (Missing is not null) Skip = Missing;
    }

    private static string? Probe()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("strace", "-f -e trace=none true")
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            })!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? null : $"strace cannot trace here (exit {p.ExitCode}: {err.Trim()}); install strace and allow ptrace to run this test";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"strace is not installed ({e.Message}); install it (apt-get install strace) to run this test";
        }
    }
}
