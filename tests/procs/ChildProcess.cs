using System.Diagnostics;

namespace MmapQueues.Tests.Procs;

/// <summary>A child process of tests/procs/child, started with <c>dotnet</c> (optionally under strace); line-based stdout.</summary>
internal sealed class ChildProcess : IDisposable
{
    private static readonly TimeSpan LineTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly Task<string> _stderr;

    private ChildProcess(Process process)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Id => _process.Id;

    /// <summary>The child's dll: bin/&lt;Configuration&gt;/net10.0 of this project, the same under child/.</summary>
    public static string Dll
    {
        get
        {
            var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            string dll = Path.Combine(output.Parent!.Parent!.Parent!.FullName, "child", "bin", output.Parent.Name, output.Name, "MmapQueue.Procs.Child.dll");
            Assert.True(File.Exists(dll), $"child not built at {dll}");
            return dll;
        }
    }

    public static ChildProcess Start(params string[] args) => StartWith("dotnet", [Dll, .. args]);

    /// <summary>Runs the child under <c>strace -f -o TRACE -e trace=SYSCALLS</c>.</summary>
    public static ChildProcess StartTraced(string trace, string syscalls, params string[] args) =>
        StartWith("strace", ["-f", "-o", trace, "-e", $"trace={syscalls}", "dotnet", Dll, .. args]);

    /// <summary>Runs the child as user and group <paramref name="uid"/> (through <c>setpriv</c>; the caller is root).</summary>
    public static ChildProcess StartAs(int uid, params string[] args) =>
        StartWith("setpriv", [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp", "dotnet", Dll, .. args]);

    private static ChildProcess StartWith(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        return new ChildProcess(Process.Start(psi)!);
    }

    private Task<string?>? _pending; // a line read started by TryReadLine that had not arrived yet

    /// <summary>The next stdout line if one arrives within <paramref name="wait"/>; null otherwise (or at the end).</summary>
    public string? TryReadLine(TimeSpan wait)
    {
        Task<string?> line = _pending ?? _process.StandardOutput.ReadLineAsync();
        if (!line.Wait(wait))
        {
            _pending = line;
            return null;
        }
        _pending = null;
        return line.Result;
    }

    /// <summary>The next stdout line; fails the test with the child's stderr if it ends or is silent for a minute.</summary>
    public string ReadLine()
    {
        Task<string?> line = _pending ?? _process.StandardOutput.ReadLineAsync();
        _pending = null;
        if (!line.Wait(LineTimeout)) Assert.Fail($"child {Id} printed nothing for {LineTimeout.TotalSeconds} s");
        if (line.Result is null)
        {
            _process.WaitForExit();
            Assert.Fail($"child {Id} ended (exit {_process.ExitCode}) without a line; stderr: {_stderr.Result}");
        }
        return line.Result!;
    }

    public void Expect(string line) => Assert.Equal(line, ReadLine());

    public void Send(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Closes stdin (the child lets go of what it holds and exits) and waits for exit code 0.</summary>
    public void Finish()
    {
        _process.StandardInput.Close();
        Assert.True(_process.WaitForExit(60_000), $"child {Id} did not exit");
        Assert.True(_process.ExitCode == 0, $"child {Id} exit {_process.ExitCode}: {_stderr.Result}");
    }

    /// <summary>SIGKILL: the child gets no chance to clean up, as in a crash.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return; // a test that replaced a killed child may dispose it again on a failure path
        _disposed = true;
        if (!_process.HasExited) Kill();
        _process.Dispose();
    }
}
