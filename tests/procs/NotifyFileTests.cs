using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NotifyFileTests
{
    [Fact]
    public void CreatesOnePageWithTheQueueFileMode()
    {
        using var dir = new TempDir();
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
        using (SharedWakeup.Open(dir.Path, mode, reader: false)) { }
        string path = dir.Sub(NotifyLayout.FileName);
        Assert.Equal(NotifyLayout.Length, new FileInfo(path).Length);
        Assert.Equal(mode, File.GetUnixFileMode(path));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void ShortFileIsRejectedWithExpectedAndFoundLength()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.Sub(NotifyLayout.FileName), new byte[100]);
        var e = Assert.Throws<QueueCorruptedException>(() => SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: true));
        Assert.Equal(dir.Sub(NotifyLayout.FileName), e.FilePath);
        Assert.Contains("expected a file of 4096 bytes, found 100 bytes", e.Message);
    }

    [Fact]
    public void WrongMagicIsRejectedAtItsOffset()
    {
        using var dir = new TempDir();
        byte[] page = new byte[NotifyLayout.Length];
        NotifyLayout.Write(page);
        page[3] ^= 0xFF;
        File.WriteAllBytes(dir.Sub(NotifyLayout.FileName), page);
        var e = Assert.Throws<QueueCorruptedException>(() => SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: true));
        Assert.Equal(NotifyLayout.MagicOffset, e.Offset);
        Assert.Contains($"magic 0x{NotifyLayout.Magic:X16}", e.Message);
    }

    [Fact]
    public void TheWriterReplacesAnEmptyNotifyFileAsAPowerCutLeavesItAndLogsWhatItFound()
    {
        using var dir = new TempDir();
        using (new MmapQueue(dir.Path, TestOptions.Small())) { }
        File.WriteAllBytes(dir.Sub(NotifyLayout.FileName), []); // created and renamed, its data never synced
        using var logs = new CapturingLoggerFactory();
        using (var q = new MmapQueue(dir.Path, TestOptions.Small(), logs))
            q.Enqueue("after the power cut"u8);
        Assert.Equal(NotifyLayout.Length, new FileInfo(dir.Sub(NotifyLayout.FileName)).Length);
        LogEntry entry = Assert.Single(logs.WithId(1007));
        Assert.Contains("expected a file of 4096 bytes, found 0 bytes", entry.Message);
    }

    [Fact]
    public void PlantedSymbolicLinkIsRefusedAndItsTargetNotOpened()
    {
        using var dir = new TempDir();
        string target = dir.Sub("elsewhere");
        File.WriteAllText(target, "not a notify page");
        File.CreateSymbolicLink(dir.Sub(NotifyLayout.FileName), target);
        var e = Assert.Throws<QueueCorruptedException>(() => SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false));
        Assert.Contains("symbolic link", e.Message);
        Assert.Equal("not a notify page", File.ReadAllText(target));
    }

    [Fact]
    public void WriterCannotWaitOnlyReadersDo()
    {
        using var dir = new TempDir();
        using var writer = SharedWakeup.Open(dir.Path, QueueFiles.DefaultFileMode, reader: false);
        Assert.Throws<InvalidOperationException>(() => writer.WaitUntil(() => true, TimeSpan.Zero));
    }
}
