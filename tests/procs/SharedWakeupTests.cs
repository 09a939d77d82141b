using System.Diagnostics;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

public sealed class SharedWakeupTests
{
    /// <summary>
    /// A reader process sleeps in the shared futex with a re-check interval of a minute; the writer (this process)
    /// publishes and wakes it. Only the cross-process FUTEX_WAKE can end that sleep within the bound asserted.
    /// </summary>
    [Fact]
    public void ReaderInAnotherProcessWakesWhenTheWriterPublishes()
    {
        using var dir = new TempDir();
        using var writer = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false);
        using var child = ChildProcess.Start("wait", dir.Path, "120000", "60000");
        child.Expect("READY");
        WaitFor(() => writer.WaitersForTests == 1, "the child to register as a waiter");
        Thread.Sleep(200); // let it reach FUTEX_WAIT, so the wake (not a first check) must end the sleep

        var woken = Stopwatch.StartNew();
        File.WriteAllText(dir.Sub("published"), "");
        writer.AfterPublish();
        child.Expect("WOKE");
        Assert.True(woken.Elapsed < TimeSpan.FromSeconds(30), $"the child woke after {woken.Elapsed}; its re-check was 60 s, so the wake was lost");
        Assert.Equal(1, writer.WakeCalls);
        child.Finish();
        Assert.Equal(0, writer.WaitersForTests);
    }

    [Fact]
    public void APublisherLateAfterTheWritersCloseReadsTheZeroPageWithoutFaulting()
    {
        using var dir = new TempDir();
        var writer = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false);
        writer.CloseForPublishers();
        Thread.Sleep(TimeSpan.FromSeconds(1.5)); // longer than the grace the close used to give before it unmapped
        writer.AfterPublish(); // a producer preempted between its publish and this load
        Assert.Equal(0, writer.WaitersForTests);
        Assert.Equal(0, writer.WakeCalls);
    }

    [Fact]
    public void WriterMakesNoWakeCallWhileNobodyWaits()
    {
        using var dir = new TempDir();
        using var writer = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false);
        for (int i = 0; i < 100_000; i++) writer.AfterPublish();
        Assert.Equal(0, writer.WakeCalls);

        using var reader = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: true);
        using var cts = new CancellationTokenSource();
        Task<bool> waiting = Task.Run(() => reader.WaitUntil(() => false, TimeSpan.FromSeconds(60), cts.Token, TimeSpan.FromMilliseconds(1)));
        WaitFor(() => writer.WaitersForTests == 1, "the reader thread to register");
        writer.AfterPublish();
        Assert.Equal(1, writer.WakeCalls); // positive control: with a waiter the same call wakes
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => waiting.GetAwaiter().GetResult());
        Assert.Equal(0, writer.WaitersForTests);
    }

    /// <summary>
    /// A reader process killed in its wait leaves the count at 1; once no reader process has the file open the
    /// writer resets it, and publishing is back to no system call.
    /// </summary>
    [Fact]
    public void CountLeftByAKilledWaiterIsRepairedOnceNoReaderProcessHasTheFile()
    {
        using var dir = new TempDir();
        using var writer = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false);
        using (var child = ChildProcess.Start("wait", dir.Path, "120000", "60000"))
        {
            child.Expect("READY");
            WaitFor(() => writer.WaitersForTests == 1, "the child to register as a waiter");
            child.Kill();
        }
        Assert.Equal(1, writer.WaitersForTests); // the dead waiter's registration
        writer.AfterPublish();                   // wakes nobody, so the writer checks for live reader processes
        Assert.Equal(0, writer.WaitersForTests);
        long calls = writer.WakeCalls;
        for (int i = 0; i < 1000; i++) writer.AfterPublish();
        Assert.Equal(calls, writer.WakeCalls);
    }

    /// <summary>The same count kept while a live reader process has the file open: its registration may be real.</summary>
    [Fact]
    public void CountIsKeptWhileAReaderProcessHasTheFileOpen()
    {
        using var dir = new TempDir();
        using var writer = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false);
        using var idle = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: true); // a live reader, not waiting
        using (var child = ChildProcess.Start("wait", dir.Path, "120000", "60000"))
        {
            child.Expect("READY");
            WaitFor(() => writer.WaitersForTests == 1, "the child to register as a waiter");
            child.Kill();
        }
        writer.AfterPublish();
        Assert.Equal(1, writer.WaitersForTests);
    }

    /// <summary>
    /// Under strace, a writer process that publishes 100,000 times with nobody waiting makes no shared
    /// FUTEX_WAKE; with a waiter (this process) it makes one per publish (the positive control of the trace).
    /// </summary>
    [RequiresStraceFact]
    public void IdlePublishesMakeNoFutexSystemCallUnderStrace()
    {
        using var dir = new TempDir();
        Assert.Equal(0, CountSharedFutexWakes(dir, "idle", "WAKES 0"));

        using var reader = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: true);
        using var cts = new CancellationTokenSource();
        Task<bool> waiting = Task.Run(() => reader.WaitUntil(() => false, TimeSpan.FromSeconds(120), cts.Token));
        WaitFor(() => reader.WaitersForTests == 1, "the reader thread to register");
        Assert.True(CountSharedFutexWakes(dir, "waited", "WAKES 100000") >= 100_000);
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => waiting.GetAwaiter().GetResult());
    }

    private static int CountSharedFutexWakes(TempDir dir, string name, string expected)
    {
        string trace = dir.Sub($"{name}.strace");
        using (var child = ChildProcess.StartTraced(trace, "futex", "publish", dir.Path, "100000"))
        {
            child.Expect("READY");
            child.Expect(expected);
            child.Finish();
        }
        // A shared futex prints as FUTEX_WAKE; the runtime's own locks use FUTEX_WAKE_PRIVATE.
        return File.ReadLines(trace).Count(l => l.Contains("FUTEX_WAKE,", StringComparison.Ordinal));
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"timed out waiting for {what}");
            Thread.Sleep(5);
        }
    }
}
