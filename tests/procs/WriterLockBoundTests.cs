using System.Diagnostics;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

/// <summary>The writer never waits without bound for a lock a reader process holds (a reader stopped while holding it).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class WriterLockBoundTests
{
    private static readonly TimeSpan Bound = FileLocks.WriterWait + TimeSpan.FromSeconds(8); // the wait, and slack for a loaded machine
    private const int Payload = 1000;

    /// <summary>A child process that holds <paramref name="file"/>'s flock and is then stopped (SIGSTOP): it answers nothing until <see cref="Resume"/>.</summary>
    private static ChildProcess Hold(string file, string mode)
    {
        var child = ChildProcess.Start("hold", file, mode);
        child.Expect("READY");
        Signal(child, "-STOP");
        return child;
    }

    private static void Signal(ChildProcess child, string signal)
    {
        using var kill = Process.Start("kill", [signal, child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>Continues a stopped holder and lets it exit (releasing its lock).</summary>
    private static void Resume(ChildProcess child)
    {
        Signal(child, "-CONT");
        child.Finish();
    }

    [Fact]
    public void WriterAppendsCommitsAndSkipsRetentionWithinTheBoundWhileAReaderProcessHoldsItsLocks()
    {
        using var dir = new TempDir();
        var log = new CapturingLoggerFactory();
        using var writer = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = 16 * 1024, RecycleSegments = false }, log);
        using var reader = writer.OpenReader("a");
        for (long i = 0; i < 100; i++) writer.Enqueue(new byte[Payload]);
        writer.WaitForBackgroundWork(); // index builds hold their segments

        // readers/pass.lock held (shared, as a registering reader does): the commit is durable, its pass gives up and says so.
        Directory.CreateDirectory(Path.Combine(dir.Path, ReaderLease.DirectoryName));
        using (var passHolder = Hold(Path.Combine(dir.Path, ReaderLease.DirectoryName, ReaderLeases.PassLockName), "sh"))
        {
            while (reader.TryRead(out _)) { }
            var watch = Stopwatch.StartNew();
            reader.Commit();
            Assert.True(watch.Elapsed < Bound, $"commit took {watch.Elapsed}");
            Assert.Equal(100, writer.Consumers["a"]);
            Assert.Equal(0, writer.FirstSequence);
            LogEntry skipped = Assert.Single(log.WithId(1018));
            Assert.Contains(ReaderLeases.PassLockName, skipped.Message);
            Assert.Contains($"pid {passHolder.Id} (", skipped.Message);
            Resume(passHolder);
        }

        // cursors.lock held: appends and rolls go on, a retention pass gives up on the floor, a commit throws (not durable).
        using var holder = Hold(Path.Combine(dir.Path, CursorStore.LockName), "ex");
        var timer = Stopwatch.StartNew();
        for (long i = 0; i < 100; i++) writer.Enqueue(new byte[Payload]);
        Assert.True(timer.Elapsed < Bound, $"appends took {timer.Elapsed}");
        timer.Restart();
        Assert.Equal(0, writer.ApplyRetention()); // may first wait for passes the rolls scheduled, each bounded the same way
        Assert.True(timer.Elapsed < Bound + 2 * FileLocks.WriterWait, $"retention took {timer.Elapsed}");
        Assert.Contains(log.WithId(1018), l => l.Message.Contains(CursorStore.LockName) && l.Message.Contains($"pid {holder.Id} ("));
        Assert.Equal(0, writer.FirstSequence);
        while (reader.TryRead(out _)) { }
        timer.Restart();
        var e = Assert.Throws<LockWaitTimeoutException>(reader.Commit);
        Assert.True(timer.Elapsed < Bound, $"commit took {timer.Elapsed}");
        Assert.Contains(CursorStore.LockName, e.Message);
        Assert.Contains($"pid {holder.Id} (", e.Message);
        Assert.Equal(100, writer.Consumers["a"]); // reading the cursors takes no lock

        Resume(holder);
        reader.Commit();
        writer.WaitForBackgroundWork();
        writer.ApplyRetention();
        Assert.True(writer.FirstSequence > 0, "retention frees what the consumer read once the lock is free");
    }

    [Fact]
    public void DropOldestAppendFailsWithinTheBoundNamingCursorsLockWhileAReaderProcessHoldsIt()
    {
        using var dir = new TempDir();
        var options = new MmapQueueOptions { SegmentSizeBytes = 16 * 1024, MaxQueueSizeBytes = 3 * 16 * 1024, FullPolicy = QueueFullPolicy.DropOldest };
        using var writer = new MmapQueue(dir.Path, options);
        using var holder = Hold(Path.Combine(dir.Path, CursorStore.LockName), "ex");
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<IOException>(() => { for (int i = 0; i < 1000; i++) writer.Enqueue(new byte[Payload]); });
        Assert.True(watch.Elapsed < Bound, $"took {watch.Elapsed}");
        Assert.Contains("DropOldest", e.Message);
        Assert.Contains(CursorStore.LockName, e.Message);
        Assert.Contains($"pid {holder.Id} (", e.Message);

        Resume(holder);
        for (int i = 0; i < 100; i++) writer.Enqueue(new byte[Payload]); // drops again once the lock is free
        Assert.True(writer.FirstSequence > 0);
    }
}
