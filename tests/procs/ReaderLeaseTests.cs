using System.Text;
using Microsoft.Extensions.Logging;
using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReaderLeaseTests
{
    private readonly CapturingLoggerFactory _logs = new();
    private ILogger Logger => _logs.CreateLogger("test");

    [Fact]
    public void LiveReaderProcessPinsItsLowestSequenceAndNamesItself()
    {
        using var dir = new TempDir();
        using var child = ChildProcess.Start("lease", dir.Path, "42");
        child.Expect("READY");
        LiveLease lease = Assert.Single(ReaderLeases.Scan(dir.Path, Logger).Live);
        Assert.Equal(42, lease.LowestSequence);
        Assert.Contains($"pid {child.Id} (", lease.Holder);
        Assert.Contains($"user {Environment.UserName}", lease.Holder);

        child.Send("advance 1000");
        child.Expect("OK");
        Assert.Equal(1000, ReaderLeases.Scan(dir.Path, Logger).LowestSequence);

        child.Finish(); // a clean exit removes its own lease
        LeaseScan after = ReaderLeases.Scan(dir.Path, Logger);
        Assert.Empty(after.Live);
        Assert.Empty(after.Removed);
        Assert.Null(after.LowestSequence);
    }

    [Fact]
    public void KilledReaderProcessNoLongerPinsAndItsLeaseIsRemovedAndLogged()
    {
        using var dir = new TempDir();
        using var alive = ChildProcess.Start("lease", dir.Path, "70");
        using var killed = ChildProcess.Start("lease", dir.Path, "5");
        alive.Expect("READY");
        killed.Expect("READY");
        Assert.Equal(5, ReaderLeases.Scan(dir.Path, Logger).LowestSequence);

        killed.Kill();
        LeaseScan scan = ReaderLeases.Scan(dir.Path, Logger);
        Assert.Equal(70, scan.LowestSequence);
        string removed = Assert.Single(scan.Removed);
        Assert.StartsWith($"{killed.Id}-", Path.GetFileName(removed));
        Assert.False(File.Exists(removed));
        LogEntry entry = Assert.Single(_logs.WithId(1038));
        Assert.Contains($"pid {killed.Id} (", entry.Message);
    }

    [Fact]
    public void RegisterCreatesALockedLeaseWithTheQueueModeAndDisposeRemovesIt()
    {
        using var dir = new TempDir();
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
        var lease = ReaderLease.Register(dir.Path, 7, mode);
        Assert.Equal(mode, File.GetUnixFileMode(lease.Path));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(lease.Path)!, "*.tmp"));
        Assert.Equal(7, ReaderLeases.Scan(dir.Path, Logger).LowestSequence); // this process holds the lock: alive
        lease.Dispose();
        Assert.False(File.Exists(lease.Path));
    }

    [Fact]
    public void DamagedLeaseOfALiveProcessIsReportedWithOffsetAndPinsEverything()
    {
        using var dir = new TempDir();
        using var lease = ReaderLease.Register(dir.Path, 9, QueueFiles.DefaultFileMode);
        using (var file = QueueFiles.OpenExisting(lease.Path, write: true)) // no .NET flock emulation: the lease holds LOCK_EX
            RandomAccess.Write(file, new byte[] { 0xFF }, LeaseLayout.SequenceOffset); // the CRC no longer matches

        LeaseScan scan = ReaderLeases.Scan(dir.Path, Logger);
        QueueCorruptedException e = Assert.Single(scan.Damaged);
        Assert.Equal(lease.Path, e.FilePath);
        Assert.Equal(LeaseLayout.CrcOffset, e.Offset);
        Assert.Contains("expected CRC32C 0x", e.Message);
        Assert.Equal(0, scan.LowestSequence);
        Assert.Single(_logs.WithId(1039));
    }

    [Fact]
    public void DamagedLeaseNobodyHoldsIsRemoved()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub(ReaderLease.DirectoryName));
        string path = Path.Combine(dir.Sub(ReaderLease.DirectoryName), "1-0000000000000000.lease");
        File.WriteAllBytes(path, Encoding.UTF8.GetBytes("garbage"));
        LeaseScan scan = ReaderLeases.Scan(dir.Path, Logger);
        Assert.Equal(path, Assert.Single(scan.Removed));
        Assert.Contains("(unreadable lease)", Assert.Single(_logs.WithId(1038)).Message);
    }

    [Fact]
    public void PlantedLinkAndOverlongFileAreReportedWithoutStoppingThePass()
    {
        using var dir = new TempDir();
        using var lease = ReaderLease.Register(dir.Path, 11, QueueFiles.DefaultFileMode);
        string readers = Path.GetDirectoryName(lease.Path)!, target = dir.Sub("target");
        File.WriteAllText(target, "keep me");
        File.CreateSymbolicLink(Path.Combine(readers, "2-link.lease"), target);
        string overlong = Path.Combine(readers, "3-long.lease");
        File.WriteAllBytes(overlong, new byte[LeaseLayout.MaxLength + 1]);
        using var holder = QueueFiles.OpenExisting(overlong, write: false); // keep it "alive": the pass must read it
        Assert.True(FileLocks.TryLockExclusive(holder, overlong));

        LeaseScan scan = ReaderLeases.Scan(dir.Path, Logger);
        Assert.Equal(2, scan.Damaged.Count);
        Assert.Contains(scan.Damaged, e => e.Message.Contains("symbolic link"));
        Assert.Contains(scan.Damaged, e => e.FilePath == overlong && e.Message.Contains($"at most {LeaseLayout.MaxLength} bytes"));
        Assert.Equal("keep me", File.ReadAllText(target));
        Assert.Contains(scan.Live, l => l.Path == lease.Path && l.LowestSequence == 11);
    }
}
