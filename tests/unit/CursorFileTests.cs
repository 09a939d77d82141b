using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests;

public class CursorFileTests
{
    private static readonly Guid Id = Guid.NewGuid();

    private static byte[] FileBytes(string dir) => File.ReadAllBytes(Path.Combine(dir, "cursors"));

    [Fact]
    public void ACommitAfterTheStoreIsDisposedThrowsAndLeavesTheFileAsItWas()
    {
        using var dir = new TempDir();
        var store = CursorStore.Open(dir.Path, Id);
        store.Commit("billing", 100);
        byte[] before = FileBytes(dir.Path);
        store.Dispose();
        // What a consumer's Commit that raced the queue's Dispose reaches: it must not reopen or rewrite the file.
        Assert.Throws<ObjectDisposedException>(() => store.Commit("billing", 200));
        Assert.Throws<ObjectDisposedException>(() => store.Commit("billing", 1 << 20));
        Assert.Equal(before, FileBytes(dir.Path));
        using var reopened = CursorStore.Open(dir.Path, Id);
        Assert.Equal(100, reopened.Snapshot.Committed["billing"]);
    }

    [Fact]
    public void CursorFileTornAtEveryByteYieldsTheOldOrTheNewPosition()
    {
        using var dir = new TempDir();
        var store = CursorStore.Open(dir.Path, Id);
        store.Commit("billing", 100);
        store.Commit("audit", 7);
        store.Commit("billing", 200); // generation 3: slot 1
        byte[] old = FileBytes(dir.Path);
        store.Commit("billing", 300); // generation 4: written over slot 0 in place
        byte[] @new = FileBytes(dir.Path);
        store.Dispose();
        Assert.Equal(old.Length, @new.Length);
        Assert.NotEqual(old, @new);

        var seen = new HashSet<long>();
        for (int cut = 0; cut <= @new.Length; cut++)
        {
            // A write torn at `cut`: the new bytes before it reached the disk, the old ones after it remain.
            byte[] torn = [.. @new.AsSpan(0, cut), .. old.AsSpan(cut)];
            CursorState s = CursorFile.Decode(torn, Id, "cursors");
            long billing = s.Committed["billing"];
            Assert.True(billing is 200 or 300, $"torn at byte {cut}: billing at {billing}, expected 200 or 300");
            Assert.Equal(7, s.Committed["audit"]);
            seen.Add(billing);
        }
        Assert.Equal([200, 300], seen.Order());
    }

    [Fact]
    public void GarbageOverTheSlotBeingWrittenYieldsTheOldPosition()
    {
        using var dir = new TempDir();
        var store = CursorStore.Open(dir.Path, Id);
        store.Commit("billing", 1);
        store.Commit("billing", 2); // generation 2: slot 0
        store.Dispose();
        byte[] file = FileBytes(dir.Path);
        var rng = new Random(42);
        for (int start = 0; start < file.Length / 2; start += 97)
        {
            byte[] torn = (byte[])file.Clone();
            rng.NextBytes(torn.AsSpan(start, Math.Min(300, file.Length / 2 - start))); // a write of garbage into slot 0
            long billing = CursorFile.Decode(torn, Id, "cursors").Committed["billing"];
            Assert.True(billing is 1 or 2, $"garbage at {start}: billing at {billing}");
        }
    }

    [Fact]
    public void BothSlotsBrokenIsReportedWithTheFileAndWhatEachSlotHeld()
    {
        using var dir = new TempDir();
        var store = CursorStore.Open(dir.Path, Id);
        store.Commit("billing", 1);
        store.Dispose();
        string path = Path.Combine(dir.Path, "cursors");
        byte[] file = File.ReadAllBytes(path);
        file[70] ^= 0xFF;
        file[file.Length / 2 + 70] ^= 0xFF;
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<QueueCorruptedException>(() => CursorStore.Open(dir.Path, Id));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("at least one cursor slot with a valid CRC32C", e.Message);
        Assert.Contains("slot 0: CRC32C", e.Message);
        Assert.Contains("slot 1: CRC32C", e.Message);
    }

    [Fact]
    public void ACursorsFileOfAnotherQueueIsRefused()
    {
        using var dir = new TempDir();
        var store = CursorStore.Open(dir.Path, Id);
        store.Commit("billing", 1);
        store.Dispose();
        var e = Assert.Throws<QueueCorruptedException>(() => CursorStore.Open(dir.Path, Guid.NewGuid()));
        Assert.Contains($"queue id {Id}", e.Message);
    }

    [Fact]
    public void ManyConsumersGrowTheSlotsAndSurviveReopen()
    {
        using var dir = new TempDir();
        var store = CursorStore.Open(dir.Path, Id);
        for (int i = 0; i < 200; i++) store.Commit($"consumer-with-a-long-name-{i:D4}", i * 10L);
        store.RaiseFloor(1234);
        store.Dispose();
        Assert.True(FileBytes(dir.Path).Length > 2 * 4096, "200 entries of ~40 bytes need more than one page per slot");
        var reopened = CursorStore.Open(dir.Path, Id);
        Assert.Equal(200, reopened.Snapshot.Committed.Count);
        Assert.Equal(1990, reopened.Snapshot.Committed["consumer-with-a-long-name-0199"]);
        Assert.Equal(1234, reopened.Snapshot.RetainedFrom);
        reopened.Dispose();
    }
}
