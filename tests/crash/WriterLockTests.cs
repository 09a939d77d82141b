using MmapQueues.Tests.Crash.Harness;

namespace MmapQueues.Tests.Crash;

/// <summary>One writing process per queue directory: the lock is held across processes, and a kill releases it.</summary>
public sealed class WriterLockTests
{
    [Fact]
    public void ASecondWriterInAnotherProcessGetsAnErrorNamingTheHolderUntilTheHolderIsKilled()
    {
        using var root = new TempDir();
        string dir = Path.Combine(root.Path, "q");
        using (var child = ChildProcess.Start(["--dir", dir, "--mode", "Async", "--flush-every", "0", "--max-records", "100"]))
        {
            Assert.True(child.WaitFor(c => c.OtherLines.Contains("OK"), TimeSpan.FromSeconds(60)), "the child did not append its records");
            var e = Assert.Throws<IOException>(() => new MmapQueue(dir));
            Assert.Contains($"is already open for writing by process pid {child.Pid}", e.Message);
            Assert.Contains(Path.Combine(dir, "lock"), e.Message);
            child.Kill(); // flock is released with the process: a kill must not leave the queue locked
        }
        using var q = new MmapQueue(dir);
        Assert.Equal(100, q.NextSequence);
    }

    [Fact]
    public void AProcessThatSwitchedOffDotNetFileLockingStillCannotOpenAQueueAnotherProcessWrites()
    {
        // DOTNET_SYSTEM_IO_DISABLEFILELOCKING=1 turns off the flock .NET takes for FileShare.None; the writer
        // lock calls flock(2) itself, so the child must still be refused while this process writes.
        using var root = new TempDir();
        string dir = Path.Combine(root.Path, "q");
        using var holder = new MmapQueue(dir);
        holder.Enqueue([1, 2, 3]);
        using var child = ChildProcess.Start(["--dir", dir, "--mode", "Async", "--flush-every", "0", "--max-records", "100"],
            new Dictionary<string, string> { ["DOTNET_SYSTEM_IO_DISABLEFILELOCKING"] = "1" });
        Assert.Equal(3, child.WaitForExit(TimeSpan.FromSeconds(60))); // 3: the child's open threw
        Assert.NotNull(child.Error);
        Assert.Contains($"is already open for writing by process pid {Environment.ProcessId}", child.Error);
        Assert.Empty(child.Enqueued); // it never appended: one writer, one sequence 1
        Assert.Equal(1, holder.NextSequence);
    }
}
