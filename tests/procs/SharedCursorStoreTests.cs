using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

public sealed class SharedCursorStoreTests
{
    private static readonly Guid QueueId = Guid.Parse("6c1f3c8e-43a4-4c5e-9d3a-0a4d3f3f2a11");

    /// <summary>
    /// Two processes and this one commit their own consumers at the same time through shared stores; no commit
    /// is lost (without the cross-process lock each would rewrite the file from its own stale state).
    /// A name long enough to grow the slot mid-run makes one of them replace the file while the others write.
    /// </summary>
    [Fact]
    public void ConcurrentCommitsFromThreeProcessesAllSurvive()
    {
        using var dir = new TempDir();
        string grower = new('g', 255);
        using var a = ChildProcess.Start("commit", dir.Path, QueueId.ToString(), "alpha", "1", "300");
        using var b = ChildProcess.Start("commit", dir.Path, QueueId.ToString(), "beta", "1000", "300");
        using (var store = CursorStore.Open(dir.Path, QueueId, shared: true))
        {
            for (int i = 0; i < 100; i++) store.Commit(i % 2 == 0 ? "gamma" : grower, 5000 + i);
            for (int i = 0; i < 40; i++) store.Commit($"{grower[..200]}{i:D3}", i); // grows past one 4 KiB slot
        }
        a.Expect("DONE");
        b.Expect("DONE");
        a.Finish();
        b.Finish();

        using var check = CursorStore.Open(dir.Path, QueueId);
        IReadOnlyDictionary<string, long> committed = check.Snapshot.Committed;
        Assert.Equal(300, committed["alpha"]);
        Assert.Equal(1299, committed["beta"]);
        Assert.Equal(5098, committed["gamma"]);
        Assert.Equal(5099, committed[grower]);
        Assert.Equal(39, committed[$"{grower[..200]}039"]);
        Assert.Equal(3 + 1 + 40, committed.Count);
        Assert.True(new FileInfo(dir.Sub(SegmentNames.CursorsName)).Length > 2 * CursorsLayout.MinSlotSize);
    }

    /// <summary>A committer killed at a random point of its loop leaves a file that decodes, and the lock free.</summary>
    [Fact]
    public void CommitterKilledMidLoopLeavesADecodableFileAndTheLockFree()
    {
        using var dir = new TempDir();
        var random = new Random();
        long last = 0;
        for (int round = 0; round < 5; round++)
        {
            using (var child = ChildProcess.Start("commit", dir.Path, QueueId.ToString(), "killed", (last + 1).ToString(), "0"))
            {
                child.Expect("READY");
                Thread.Sleep(random.Next(5, 60));
                child.Kill();
            }
            using var store = CursorStore.Open(dir.Path, QueueId, shared: true);
            long now = store.Snapshot.Committed["killed"];
            Assert.True(now > last, $"round {round}: position {now} did not move past {last}");
            last = now;
            store.Commit("survivor", round); // the killed process's lock is gone
        }
    }

    [Fact]
    public void RefreshShowsAnotherProcessesCommit()
    {
        using var dir = new TempDir();
        using var store = CursorStore.Open(dir.Path, QueueId, shared: true);
        store.Commit("mine", 1);
        using (var child = ChildProcess.Start("commit", dir.Path, QueueId.ToString(), "theirs", "77", "1"))
        {
            child.Expect("DONE");
            child.Finish();
        }
        Assert.False(store.Snapshot.Committed.ContainsKey("theirs"));
        store.Refresh();
        Assert.Equal(77, store.Snapshot.Committed["theirs"]);
        Assert.Equal(1, store.Snapshot.Committed["mine"]);
    }
}
