using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// The crash child (tests/crash/child) as a running process: starts it with <c>dotnet</c>, parses its
/// stdout (protocol in the child's Program.cs) on a background thread, and kills it with SIGKILL.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly Thread _readerThread;
    private readonly object _gate = new();
    private readonly List<string> _other = new();

    private ChildProcess(Process process)
    {
        _process = process;
        _readerThread = new Thread(ReadLines) { IsBackground = true, Name = "crash-child-stdout" };
        _readerThread.Start();
    }

    /// <summary>The sequence the child saw as next on open (S line), or -1 before it opened.</summary>
    public long StartSequence { get; private set; } = -1;

    /// <summary>Records whose Enqueue returned (E lines): sequence to tag.</summary>
    public Dictionary<long, long> Enqueued { get; } = new();

    /// <summary>The highest sequence acknowledged durable (A lines; every sequence up to it is covered), or -1.</summary>
    public long MaxAcked { get; private set; } = -1;

    /// <summary>Consumer mode: the last "Y" line, rolls into a recycled segment the child reported.</summary>
    public long RecycledRolls { get; private set; }

    /// <summary>Consumer mode: positions whose Commit started (c lines), in order.</summary>
    public List<long> CommitsStarted { get; } = new();

    /// <summary>Consumer mode: durable committed positions (C lines: a Commit returned, or the position it opened at), in order.</summary>
    public List<long> CommitsReturned { get; } = new();

    /// <summary>Every line that is not S/E/A/c/C, in order (F, R, D, OK, X).</summary>
    public IReadOnlyList<string> OtherLines { get { lock (_gate) return _other.ToList(); } }

    public string? Error { get { lock (_gate) return _other.FirstOrDefault(l => l.StartsWith("X ", StringComparison.Ordinal)); } }

    public static string DllPath
    {
        get
        {
            string? path = typeof(ChildProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "CrashChildDll")?.Value;
            if (path is null || !File.Exists(path))
                throw new FileNotFoundException($"The crash child was not built where the test project expects it: {path}. " +
                                                "Build tests/crash (it builds the child through a ProjectReference).");
            return path;
        }
    }

    public static ChildProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(DllPath);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_TieredPGO"] = "0"; // fewer background JIT threads on a shared 2-core machine
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the crash child");
        p.ErrorDataReceived += (_, _) => { }; // drained so a chatty stderr cannot block the child
        p.BeginErrorReadLine();
        return new ChildProcess(p);
    }

    /// <summary>The child's process id.</summary>
    public int Pid => _process.Id;

    public int ElapsedMsSinceStart => (int)(DateTime.Now - _process.StartTime).TotalMilliseconds;

    /// <summary>Waits until <paramref name="condition"/> holds (checked under the parse lock), the child exits, or the timeout.</summary>
    public bool WaitFor(Func<ChildProcess, bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            lock (_gate)
            {
                if (condition(this)) return true;
                if (!_readerThread.IsAlive) return false;
                Monitor.Wait(_gate, 20);
            }
        }
        return false;
    }

    /// <summary>SIGKILL (a crash: no finalizer, no flush), then reads what the pipe still holds.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: false); // Process.Kill is SIGKILL on Unix
        _process.WaitForExit();
        _readerThread.Join();
    }

    /// <summary>Waits for a child that ends by itself; kills it after the timeout.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) Kill();
        _readerThread.Join();
        return _process.ExitCode;
    }

    private void ReadLines()
    {
        StreamReader r = _process.StandardOutput;
        while (r.ReadLine() is { } line)
        {
            lock (_gate)
            {
                Parse(line);
                Monitor.PulseAll(_gate);
            }
        }
        lock (_gate) Monitor.PulseAll(_gate);
    }

    private void Parse(string line)
    {
        string[] f = line.Split(' ');
        switch (f[0])
        {
            case "S": StartSequence = long.Parse(f[1], CultureInfo.InvariantCulture); break;
            case "E" when f.Length == 3:
                Enqueued[long.Parse(f[1], CultureInfo.InvariantCulture)] = long.Parse(f[2], CultureInfo.InvariantCulture);
                break;
            case "c": CommitsStarted.Add(long.Parse(f[1], CultureInfo.InvariantCulture)); break;
            case "C": CommitsReturned.Add(long.Parse(f[1], CultureInfo.InvariantCulture)); break;
            case "Y": RecycledRolls = Math.Max(RecycledRolls, long.Parse(f[1], CultureInfo.InvariantCulture)); break;
            case "A": MaxAcked = Math.Max(MaxAcked, long.Parse(f[1], CultureInfo.InvariantCulture)); break;
            default: _other.Add(line); break;
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
