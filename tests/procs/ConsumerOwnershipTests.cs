using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

public sealed class ConsumerOwnershipTests
{
    [Fact]
    public void SecondClaimFromAnotherProcessFailsNamingTheHolder()
    {
        using var dir = new TempDir();
        using var child = ChildProcess.Start("own", dir.Path, "orders");
        child.Expect("READY");
        var e = Assert.Throws<InvalidOperationException>(() => ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode));
        Assert.Contains($"Consumer 'orders' of queue {dir.Path} is owned by process pid {child.Id} (", e.Message);
        Assert.Contains(ConsumerOwnership.LockPathFor(dir.Path, "orders"), e.Message);
        Assert.Contains($"pid {child.Id} (", ConsumerOwnership.CurrentHolder(dir.Path, "orders"));

        using var other = ConsumerOwnership.Claim(dir.Path, "invoices", QueueFiles.DefaultFileMode); // another name is free
    }

    [Fact]
    public void ClaimFromAnotherProcessIsRefusedWhileThisProcessOwnsIt()
    {
        using var dir = new TempDir();
        using (ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode))
        {
            using var child = ChildProcess.Start("own", dir.Path, "orders");
            string line = child.ReadLine();
            Assert.StartsWith("REFUSED ", line);
            Assert.Contains($"pid {Environment.ProcessId} (", line);
            child.Finish();
        }
        // Free once this process closed its lock. Bounded wait: a child process another test forks at that moment
        // shares the open file description (so the lock) from fork until its exec closes the descriptor.
        Assert.True(SpinWait.SpinUntil(() => ConsumerOwnership.CurrentHolder(dir.Path, "orders") is null, TimeSpan.FromSeconds(10)),
            $"still held: {ConsumerOwnership.CurrentHolder(dir.Path, "orders")}");
    }

    [Fact]
    public async Task AClaimWaitsOutAnInfoProbeThatHoldsTheLockForAMoment()
    {
        using var dir = new TempDir();
        ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode).Dispose(); // the lock file exists, its text empty
        string path = ConsumerOwnership.LockPathFor(dir.Path, "orders");
        for (int round = 0; round < 20; round++)
        {
            var probe = File.Open(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite); // what CurrentHolder does: LOCK_EX, no text
            Assert.True(FileLocks.TryLockExclusive(probe.SafeFileHandle, path));
            using var started = new ManualResetEventSlim();
            var claim = Task.Run(() => { started.Set(); return ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode); });
            started.Wait();
            Thread.Sleep(1);
            probe.Dispose();
            (await claim).Dispose(); // not refused as "owned by a process that is starting"
        }
    }

    [Fact]
    public void KilledOwnerReleasesTheConsumer()
    {
        using var dir = new TempDir();
        using (var child = ChildProcess.Start("own", dir.Path, "orders"))
        {
            child.Expect("READY");
            child.Kill();
        }
        using var owner = ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode);
        Assert.Contains($"pid {Environment.ProcessId} (", ConsumerOwnership.CurrentHolder(dir.Path, "orders"));
    }

    [Fact]
    public void SecondClaimInTheSameProcessFailsUntilTheFirstIsDisposed()
    {
        using var dir = new TempDir();
        var first = ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode);
        Assert.Throws<InvalidOperationException>(() => ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode));
        first.Dispose();
        using var second = ConsumerOwnership.Claim(dir.Path, "orders", QueueFiles.DefaultFileMode);
    }

    [Fact]
    public void AnyValidNameMapsToAFileNameAndDistinctNamesToDistinctFiles()
    {
        using var dir = new TempDir();
        string longest = new('é', 127), slashy = "../../etc/passwd", dotted = ".";
        using var a = ConsumerOwnership.Claim(dir.Path, longest, QueueFiles.DefaultFileMode);
        using var b = ConsumerOwnership.Claim(dir.Path, slashy, QueueFiles.DefaultFileMode);
        using var c = ConsumerOwnership.Claim(dir.Path, dotted, QueueFiles.DefaultFileMode);
        string consumers = dir.Sub(ConsumerOwnership.DirectoryName);
        Assert.All(new[] { a, b, c }, o => Assert.Equal(consumers, Path.GetDirectoryName(o.Path)));
        Assert.Equal(3, Directory.GetFiles(consumers).Length);
        Assert.Throws<ArgumentException>(() => ConsumerOwnership.Claim(dir.Path, "", QueueFiles.DefaultFileMode));
    }
}
