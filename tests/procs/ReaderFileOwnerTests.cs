using System.Diagnostics;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

/// <summary>A fact that runs as root only (it gives files to another user); skips with the reason otherwise.</summary>
public sealed class RequiresRootFactAttribute : FactAttribute
{
    public RequiresRootFactAttribute()
    {
        if (Environment.UserName != "root") Skip = "needs root: a reader running as root gives its files to the writer's user";
    }
}

/// <summary>What a reader process creates in the queue directory stays usable by the writer: queue.meta's mode, and its owner when the reader is root.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReaderFileOwnerTests
{
    private static readonly MmapQueueOptions ReadOnlyDefaults = new() { ReadOnly = true }; // FilePermissions 0600: not what it uses

    /// <summary>The queue directory's entries as "relative-path uid:gid octal-mode", from stat(1).</summary>
    private static Dictionary<string, string> Stat(string dir)
    {
        var entries = Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories);
        var psi = new ProcessStartInfo("stat", ["-c", "%u:%g %a %n", .. entries]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var result = new Dictionary<string, string>();
        while (p.StandardOutput.ReadLine() is { } line)
        {
            string[] f = line.Split(' ', 3);
            result[Path.GetRelativePath(dir, f[2])] = $"{f[0]} {f[1]}";
        }
        p.WaitForExit();
        return result;
    }

    private static void WriteQueue(string dir, UnixFileMode mode)
    {
        using var writer = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = 16 * 1024, FilePermissions = mode });
        for (long i = 0; i < 10; i++) writer.Enqueue(WriterPayload.For(i));
    }

    [Fact]
    public void FilesAReaderProcessCreatesTakeTheModeOfQueueMetaNotItsOwnOptions()
    {
        using var dir = new TempDir();
        WriteQueue(dir.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead); // 0640
        File.Delete(Path.Combine(dir.Path, CursorStore.LockName));
        using (var queue = new MmapQueue(dir.Path, ReadOnlyDefaults))
        using (var reader = queue.OpenReader("shipper")) // a lease, readers/, pass.lock, consumers/ and its lock, cursors (+ lock)
        {
            Assert.True(reader.TryRead(out _));
            reader.Commit();
            var stat = Stat(dir.Path);
            string uid = stat["queue.meta"].Split(' ')[0];
            Assert.Equal($"{uid} 640", stat["queue.meta"]);
            Assert.Equal($"{uid} 750", stat[ReaderLease.DirectoryName]);
            Assert.Equal($"{uid} 750", stat[ConsumerOwnership.DirectoryName]);
            Assert.Equal($"{uid} 640", stat[Path.Combine(ReaderLease.DirectoryName, ReaderLeases.PassLockName)]);
            Assert.Equal($"{uid} 640", stat[CursorStore.LockName]);
            Assert.Equal($"{uid} 640", stat[Path.GetRelativePath(dir.Path, ConsumerOwnership.LockPathFor(dir.Path, "shipper"))]);
            Assert.Contains(stat, e => e.Key.StartsWith(ReaderLease.DirectoryName + "/", StringComparison.Ordinal) && e.Key.EndsWith(".lease", StringComparison.Ordinal) && e.Value == $"{uid} 640");
        }
    }

    [RequiresRootFact]
    public void FilesARootReaderCreatesBelongToTheOwnerOfQueueMeta()
    {
        using var dir = new TempDir();
        WriteQueue(dir.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using (var chown = Process.Start("chown", ["-R", "65534:65534", dir.Path])!) chown.WaitForExit(); // the writer's user: nobody
        using (var queue = new MmapQueue(dir.Path, ReadOnlyDefaults))
        using (var reader = queue.OpenReader("shipper"))
        {
            Assert.True(reader.TryRead(out _));
            reader.Commit(); // grows cursors (a new file) and creates cursors.lock
            var stat = Stat(dir.Path);
            Assert.All(stat, e => Assert.StartsWith("65534:65534 ", e.Value));
            Assert.Contains(stat, e => e.Key.EndsWith(".lease", StringComparison.Ordinal));
            Assert.Contains(ReaderLease.DirectoryName, stat.Keys);
        }
    }

    [Fact]
    public void ALeaseTheWriterCannotOpenIsDeadWhenThePidInItsNameIsGone()
    {
        using var gone = Process.Start("true")!;
        gone.WaitForExit();
        Assert.Equal(gone.Id, ReaderLeases.DeadByName($"{gone.Id}-0123456789abcdef.lease"));
        Assert.Equal(gone.Id, ReaderLeases.DeadByName($"{gone.Id}-0123456789abcdef.lease.fedcba9876543210.tmp"));
        Assert.Null(ReaderLeases.DeadByName($"{Environment.ProcessId}-0123456789abcdef.lease")); // alive
        Assert.Null(ReaderLeases.DeadByName("1-0123456789abcdef.lease")); // alive (init), even when not ours to signal
        Assert.Null(ReaderLeases.DeadByName("pass.lock"));
        Assert.Null(ReaderLeases.DeadByName("-5-x.lease"));
    }

    [RequiresRootFact]
    public void AWriterAsAnotherUserRemovesALeaseItCannotOpenWhosePidIsGoneAndKeepsALiveOne()
    {
        const int nobody = 65534;
        using var dir = new TempDir();
        using (var chown = Process.Start("chown", [$"{nobody}:{nobody}", dir.Path])!) chown.WaitForExit();
        using var writer = ChildProcess.StartAs(nobody, "writer", dir.Path, "16384", "3000");
        writer.Expect("READY");
        string readers = dir.Sub(ReaderLease.DirectoryName);
        Directory.CreateDirectory(readers);
        using (var chown = Process.Start("chown", [$"{nobody}:{nobody}", readers])!) chown.WaitForExit();
        using var gone = Process.Start("true")!;
        gone.WaitForExit();
        // Root-owned 0600 leases, as an old `sudo mmapq tail -f` left them: the writer (nobody) cannot open them.
        string dead = Path.Combine(readers, $"{gone.Id}-0123456789abcdef.lease");
        string live = Path.Combine(readers, $"{Environment.ProcessId}-fedcba9876543210.lease");
        foreach (string lease in new[] { dead, live })
        {
            File.WriteAllBytes(lease, new byte[60]);
            File.SetUnixFileMode(lease, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        writer.Send("go");
        string[] done = writer.ReadLine().Split(' ');
        Assert.Equal("DONE", done[0]);
        Assert.Equal("0", done[2]); // the live process's lease it cannot read pins every segment
        Assert.False(File.Exists(dead), "the lease of a pid with no process was not removed");
        Assert.True(File.Exists(live));

        File.Delete(live); // that reader went away cleanly
        writer.Send("drain");
        string[] first = writer.ReadLine().Split(' ');
        Assert.Equal("FIRST", first[0]);
        Assert.True(long.Parse(first[1]) > 0, "retention freed nothing once no lease pinned it");
        writer.Finish();
    }
}
