using System.Diagnostics;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>Runs a system tool (losetup, mount, mkfs, cp) and reports its exit code and output.</summary>
internal static class Shell
{
    public static (int Exit, string Out, string Err) Try(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            Task<string> err = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout.Trim(), err.Result.Trim());
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, "", $"{file} could not be started: {e.Message}");
        }
    }

    public static string Run(string file, params string[] args)
    {
        var (exit, stdout, stderr) = Try(file, args);
        if (exit != 0) throw new IOException($"`{file} {string.Join(' ', args)}` failed with exit code {exit}: {stderr}");
        return stdout;
    }

    public static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Concat(["/sbin", "/usr/sbin"])
            .Any(d => File.Exists(Path.Combine(d, tool)));
}
