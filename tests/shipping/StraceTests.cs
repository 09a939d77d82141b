using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace MmapQueues.Tests.Shipping;

public sealed partial class StraceTests
{
    /// <summary>
    /// ExportTo(Socket) in a child process under strace: after the child's marker, every segment byte goes
    /// out through sendfile from a segment file descriptor, and no read/pread64 touches a segment file.
    /// </summary>
    [RequiresStraceFact]
    public void ExportToSocketUsesSendfileAndNeverReadsSegmentFiles() => AssertSendfileOnly(async: false);

    /// <summary>The same for ExportToAsync, whose sendfile goes through the runtime's SendPacketsAsync.</summary>
    [RequiresStraceFact]
    public void ExportToAsyncSocketUsesSendfileAndNeverReadsSegmentFiles() => AssertSendfileOnly(async: true);

    private static void AssertSendfileOnly(bool async)
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica"), trace = dir.Sub("trace.txt");
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 1L << 20 }))
            Loopback.AppendMixed(q, 6L << 20, seed: 3, maxRecord: 128 << 10);

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        // bin/<Configuration>/net10.0 of this project -> the same under child/ (built by the ProjectReference).
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        string child = Path.Combine(output.Parent!.Parent!.Parent!.FullName, "child", "bin", output.Parent.Name, output.Name, "MmapQueue.Shipping.Child.dll");
        Assert.True(File.Exists(child), $"child not built at {child}");
        var psi = new ProcessStartInfo("strace", $"-f -o {trace} -e trace=sendfile,read,pread64,openat,close,write dotnet {child} {source} {port}{(async ? " async" : "")}")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(psi)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        using (Socket r = listener.Accept())
            Loopback.Receive(replica, r).GetAwaiter().GetResult();
        Assert.True(p.WaitForExit(60_000), "the exporter child did not exit");
        Assert.True(p.ExitCode == 0, $"child exit {p.ExitCode}: {stderr.Result}");
        Loopback.AssertSameSegments(source, replica);

        string[] lines = JoinInterrupted(File.ReadAllLines(trace));
        int begin = Array.FindIndex(lines, l => l.Contains("EXPORT-BEGIN"));
        Assert.True(begin >= 0, "marker not found in the trace; writes seen: " + string.Join("\n", lines.Where(l => l.Contains("write(")).Take(20)));
        var segmentFds = new HashSet<int>();
        int sendfiles = 0;
        long sentBytes = 0;
        foreach (string line in lines.Skip(begin))
        {
            if (OpenSegment().Match(line) is { Success: true } o) segmentFds.Add(int.Parse(o.Groups[1].Value));
            if (ReopenThroughProc().Match(line) is { Success: true } ro && segmentFds.Contains(int.Parse(ro.Groups[1].Value)))
                segmentFds.Add(int.Parse(ro.Groups[2].Value)); // the asynchronous FileStream for sendfile reopens the checked segment's inode
            if (Close().Match(line) is { Success: true } c) segmentFds.Remove(int.Parse(c.Groups[1].Value)); // the number may be reused for another file
            if (ReadCall().Match(line) is { Success: true } rd && segmentFds.Contains(int.Parse(rd.Groups[2].Value)))
                Assert.Fail($"a segment file was read through user space: {line}");
            if (Sendfile().Match(line) is { Success: true } sf)
            {
                Assert.Contains(int.Parse(sf.Groups[1].Value), segmentFds);
                sendfiles++;
                sentBytes += long.Parse(sf.Groups[2].Value);
            }
        }
        Assert.True(sendfiles > 0, "no sendfile call after the marker");
        long segmentBytes = Directory.GetFiles(source, "*.seg").Length * (1L << 20);
        Assert.True(sentBytes > segmentBytes / 2, $"sendfile carried {sentBytes} bytes; expected most of {segmentBytes}");
    }

    // strace -f splits a call that another thread interrupts into "PID call(args <unfinished ...>" and, later,
    // "PID <... call resumed>rest"; this joins each pair into one line where the call started, so no fd is missed.
    private static string[] JoinInterrupted(string[] lines)
    {
        var joined = new List<string>();
        var open = new Dictionary<string, int>(); // pid -> index in joined of its unfinished call
        foreach (string line in lines)
        {
            if (Unfinished().Match(line) is { Success: true } u)
            {
                open[u.Groups[1].Value] = joined.Count;
                joined.Add(u.Groups[2].Value);
            }
            else if (Resumed().Match(line) is { Success: true } r && open.Remove(r.Groups[1].Value, out int at))
                joined[at] += r.Groups[2].Value;
            else joined.Add(line);
        }
        return [.. joined];
    }

    [GeneratedRegex(@"^(\d+)\s+(.*) <unfinished \.\.\.>$")]
    private static partial Regex Unfinished();

    [GeneratedRegex(@"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$")]
    private static partial Regex Resumed();

    [GeneratedRegex(@"openat\((?:AT_FDCWD|\d+), ""[^""]*\.seg"", [^)]*\) = (\d+)")]
    private static partial Regex OpenSegment();

    [GeneratedRegex(@"openat\(AT_FDCWD, ""/proc/self/fd/(\d+)"", [^)]*\) = (\d+)")]
    private static partial Regex ReopenThroughProc();

    [GeneratedRegex(@"\bclose\((\d+)\)")]
    private static partial Regex Close();

    [GeneratedRegex(@"\b(read|pread64)\((\d+),")]
    private static partial Regex ReadCall();

    [GeneratedRegex(@"sendfile\(\d+, (\d+), .*\) = (\d+)")]
    private static partial Regex Sendfile();
}
