using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

public class ConsumerTests
{
    [Fact]
    public void TwoNamedConsumersAtDifferentSpeedsEachResumeAtTheirCommitAfterReopen()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Fill(q, 500);
            using var fast = q.OpenReader("fast");
            using var slow = q.OpenReader("slow");
            ReadExpecting(fast, 400);
            fast.Commit();
            ReadExpecting(slow, 70);
            slow.Commit();
            ReadExpecting(slow, 5); // read, not committed: delivered again after reopen
        }
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Assert.Equal(new Dictionary<string, long> { ["fast"] = 400, ["slow"] = 70 }, q.Consumers);
            using var fast = q.OpenReader("fast");
            using var slow = q.OpenReader("slow");
            Assert.Equal(400, fast.NextSequence);
            Assert.Equal(70, slow.NextSequence);
            ReadExpecting(fast, 100);
            Assert.False(fast.TryRead(out _));
            ReadExpecting(slow, 10);
            slow.Commit();
        }
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using var slow = q.OpenReader("slow");
            Assert.Equal(80, slow.NextSequence);
        }
    }

    [Fact]
    public void DisposingAReaderWithoutCommitRedeliversItsRecords()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Fill(q, 10);
        using (var r = q.OpenReader("billing"))
        {
            ReadExpecting(r, 3);
            r.Commit();
            ReadExpecting(r, 4);
        }
        using (var r = q.OpenReader("billing"))
        {
            Assert.Equal(3, r.NextSequence);
            ReadExpecting(r, 7);
        }
    }

    [Fact]
    public void ANewConsumerStartsAtTheFirstRetainedSequenceAndIsRegisteredAtOnce()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Fill(q, 5);
        using var r = q.OpenReader("new");
        Assert.Equal(0, r.NextSequence);
        Assert.Equal(0, q.Consumers["new"]);
        Assert.Equal("new", r.ConsumerName);
    }

    [Fact]
    public void ASecondReaderForTheSameConsumerIsRefusedUntilTheFirstIsDisposed()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        var first = q.OpenReader("billing");
        var e = Assert.Throws<InvalidOperationException>(() => q.OpenReader("billing"));
        Assert.Contains("Consumer 'billing'", e.Message);
        Assert.Contains("already open", e.Message);
        first.Dispose();
        using var second = q.OpenReader("billing");
    }

    [Fact]
    public void AnAnonymousReaderCannotCommit()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        using var r = q.OpenReader(0);
        var e = Assert.Throws<InvalidOperationException>(() => r.Commit());
        Assert.Contains("Only a named consumer can commit", e.Message);
    }

    [Fact]
    public void ConsumerNamesOutsideOneTo255Utf8BytesAreRefused()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        Assert.Contains("1 to 255 bytes", Assert.Throws<ArgumentException>(() => q.OpenReader("")).Message);
        Assert.Contains("has 256", Assert.Throws<ArgumentException>(() => q.OpenReader(new string('x', 256))).Message);
        using var ok = q.OpenReader(new string('é', 127)); // 254 bytes
    }

    [Fact]
    public void RemovedConsumerIsForgottenDurably()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using (var r = q.OpenReader("gone")) { }
            using var open = q.OpenReader("kept");
            Assert.Throws<InvalidOperationException>(() => q.RemoveConsumer("kept"));
            Assert.True(q.RemoveConsumer("gone"));
            Assert.False(q.RemoveConsumer("gone"));
        }
        using (var q = new MmapQueue(dir.Path, Options()))
            Assert.Equal(["kept"], q.Consumers.Keys);
    }

    [Fact]
    public void ACommitPastWhatSurvivedACrashIsClampedToTheNextSequence()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            Fill(q, 10);
            using var r = q.OpenReader("ahead");
            ReadExpecting(r, 10);
            r.Commit();
        }
        // Simulate power loss of unflushed records by committing further than the queue holds.
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using (var r = q.OpenReader("ahead")) r.Commit();
        }
        var state = Storage.CursorStore.Open(dir.Path, Storage.QueueDirectory.ReadMeta(Path.Combine(dir.Path, "queue.meta")).QueueId);
        state.Commit("ahead", 25);
        state.Dispose();
        using (var q = new MmapQueue(dir.Path, Options()))
        {
            using var r = q.OpenReader("ahead");
            Assert.Equal(10, r.NextSequence);
            Assert.Equal(10, q.Consumers["ahead"]);
            Fill(q, 1);
            ReadExpecting(r, 1);
        }
    }
}
