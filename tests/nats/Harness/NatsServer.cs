using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MmapQueues.Tests.Nats.Harness;

/// <summary>
/// One nats-server process with JetStream on a free loopback port, its store in a directory the test owns.
/// Killed with SIGKILL (a crash) and restarted on the same port and store.
/// </summary>
internal sealed class NatsServer : IDisposable
{
    private readonly string _arguments;
    private Process? _process;

    private NatsServer(int port, string arguments)
    {
        Port = port;
        _arguments = arguments;
    }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Null when nats-server is on the PATH; otherwise why the tests that need it skip.</summary>
    public static string? WhyUnavailable { get; } = FindOnPath("nats-server") is null
        ? "nats-server is not installed (apt-get install nats-server); the JetStream forwarding tests need a real server"
        : null;

    /// <summary>A single node: <c>nats-server -a 127.0.0.1 -p PORT -js -sd DIR</c>.</summary>
    public static NatsServer StartSingle(string storeDir)
    {
        int port = FreePort();
        var server = new NatsServer(port, $"-a 127.0.0.1 -p {port} -js -sd \"{storeDir}\"");
        server.Start();
        return server;
    }

    /// <summary>A node configured by a file (a cluster member).</summary>
    public static NatsServer StartWithConfig(int port, string configFile, bool wait = true)
    {
        var server = new NatsServer(port, $"-c \"{configFile}\"");
        server.Start(wait);
        return server;
    }

    public void Start(bool wait = true)
    {
        var psi = new ProcessStartInfo(FindOnPath("nats-server")!, _arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start nats-server");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        if (wait) WaitUntilListening();
    }

    public void WaitUntilListening()
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (_process!.HasExited) throw new InvalidOperationException($"nats-server {_arguments} exited with {_process.ExitCode}");
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>SIGKILL: the server has no chance to flush or say goodbye.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false }) _process.Kill();
        _process?.WaitForExit();
        _process?.Dispose();
        _process = null;
    }

    /// <summary>SIGTERM: the server shuts down cleanly (its store written out), as an operator's stop or restart does.</summary>
    public void Stop()
    {
        if (_process is { HasExited: false } p && SendSignal(p.Id, 15) != 0)
            throw new InvalidOperationException($"kill(SIGTERM) of nats-server {p.Id} failed");
        if (_process is not null && !_process.WaitForExit(TimeSpan.FromSeconds(20))) _process.Kill();
        _process?.WaitForExit();
        _process?.Dispose();
        _process = null;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int SendSignal(int pid, int signal);

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    public void Dispose() => Kill();
}

/// <summary>Three JetStream nodes on loopback in one cluster (config files with server_name, routes, store_dir each).</summary>
internal sealed class NatsCluster : IDisposable
{
    public NatsCluster(string root)
    {
        int[] client = [NatsServer.FreePort(), NatsServer.FreePort(), NatsServer.FreePort()];
        int[] route = [NatsServer.FreePort(), NatsServer.FreePort(), NatsServer.FreePort()];
        for (int i = 0; i < 3; i++)
        {
            string store = Path.Combine(root, $"n{i}");
            Directory.CreateDirectory(store);
            string routes = string.Join(", ", route.Where((_, j) => j != i).Select(p => $"\"nats-route://127.0.0.1:{p}\""));
            string config = Path.Combine(root, $"n{i}.conf");
            File.WriteAllText(config, $$"""
                server_name: n{{i}}
                listen: 127.0.0.1:{{client[i]}}
                jetstream { store_dir: "{{store}}" }
                cluster {
                  name: mmapq-test
                  listen: 127.0.0.1:{{route[i]}}
                  routes: [{{routes}}]
                }
                """);
            Nodes.Add(NatsServer.StartWithConfig(client[i], config, wait: false));
        }
        foreach (NatsServer n in Nodes) n.WaitUntilListening();
    }

    public List<NatsServer> Nodes { get; } = [];

    /// <summary>Every node's URL, comma-separated: the client fails over between them.</summary>
    public string Urls => string.Join(",", Nodes.Select(n => n.Url));

    public void Dispose()
    {
        foreach (NatsServer n in Nodes) n.Dispose();
    }
}

/// <summary>A fact that needs nats-server; skips with the reason otherwise.</summary>
public sealed class RequiresNatsServerFactAttribute : FactAttribute
{
    public RequiresNatsServerFactAttribute()
    {
        if (NatsServer.WhyUnavailable is { } why) Skip = why;
    }
}

/// <summary>A theory that needs nats-server; skips with the reason otherwise.</summary>
public sealed class RequiresNatsServerTheoryAttribute : TheoryAttribute
{
    public RequiresNatsServerTheoryAttribute()
    {
        if (NatsServer.WhyUnavailable is { } why) Skip = why;
    }
}
