using System.Diagnostics;

namespace MmapQueues.Tests;

public class SyscallTests
{
    [RequiresStraceFact]
    public void FlushIssuesMsyncOverTheDirtyRange()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        for (int i = 0; i < 100; i++) q.Enqueue(TestPayloads.For(i, 100));

        string log = dir.Sub("strace.log");
        using var strace = StraceSelf(log, "msync");
        q.Flush();
        q.Enqueue(TestPayloads.For(100, 100));
        q.Flush();
        string trace = StopAndRead(strace, log);

        // Every msync is MS_SYNC, and there is at least one per Flush call.
        var msyncs = trace.Split('\n').Where(l => l.Contains("msync(")).ToList();
        Assert.True(msyncs.Count >= 2, $"expected an msync per Flush, strace saw:\n{trace}");
        Assert.All(msyncs, l => Assert.Contains("MS_SYNC", l));
    }

    /// <summary>Attaches strace to this process (all threads) and waits until it is tracing.</summary>
    internal static Process StraceSelf(string log, string syscalls)
    {
        var psi = new ProcessStartInfo("strace", $"-f -p {Environment.ProcessId} -e trace={syscalls} -o {log}")
        { RedirectStandardError = true, UseShellExecute = false };
        var p = Process.Start(psi)!;
        var attached = new TaskCompletionSource();
        p.ErrorDataReceived += (_, e) => { if (e.Data?.Contains("attached", StringComparison.Ordinal) == true) attached.TrySetResult(); };
        p.BeginErrorReadLine();
        if (!attached.Task.Wait(TimeSpan.FromSeconds(20)))
            throw new InvalidOperationException("strace did not attach within 20 s (is ptrace allowed here?)");
        Thread.Sleep(200); // strace attaches thread by thread; let it finish
        return p;
    }

    internal static string StopAndRead(Process strace, string log)
    {
        Thread.Sleep(100);
        strace.Kill(); // SIGKILL detaches the tracer; the traced process carries on
        strace.WaitForExit();
        return File.ReadAllText(log);
    }
}
