using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

/// <summary>
/// A local user who can plant entries in a queue directory cannot make the queue follow a link to another
/// file (read it, truncate it, overwrite it), and the queue's files are not readable by other users unless
/// the options say so.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class FileSecurityTests
{
    private const string VictimText = "the victim's own content\n";

    [Fact]
    public void ALockFileReplacedByALinkIsRefusedAndItsTargetIsLeftUntouched()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q"), victim = PlantVictim(dir);
        using (var queue = new MmapQueue(q, Options())) queue.Enqueue([1]);
        File.Delete(Path.Combine(q, "lock"));
        File.CreateSymbolicLink(Path.Combine(q, "lock"), victim);

        var e = Assert.Throws<QueueCorruptedException>(() => new MmapQueue(q, Options()));
        Assert.Equal(Path.Combine(q, "lock"), e.FilePath);
        Assert.Contains("expected a regular file", e.Message);
        Assert.Contains("symbolic link", e.Message);
        Assert.Equal(VictimText, File.ReadAllText(victim));
    }

    [Fact]
    public void ALinkPlantedAtATemporaryNameCannotOverwriteItsTarget()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q"), victim = PlantVictim(dir);
        Directory.CreateDirectory(q);
        foreach (string name in new[] { "queue.meta.tmp", "cursors.tmp", "next.seg.tmp" })
            File.CreateSymbolicLink(Path.Combine(q, name), victim);

        using (var queue = new MmapQueue(q, Options()))
        {
            Fill(queue, RecordsPerSegment + 1); // a roll: the spare segment is renamed into place
            using var reader = queue.OpenReader("c");
            Assert.True(reader.TryRead(out _));
            reader.Commit(); // the cursors file is created through a temporary file
        }

        Assert.Equal(VictimText, File.ReadAllText(victim));
        Assert.Empty(Directory.GetFiles(q, "*.tmp")); // the planted links were removed, not followed
        using var reopened = new MmapQueue(q, Options());
        Assert.Equal(RecordsPerSegment + 1, reopened.NextSequence);
    }

    [Fact]
    public void AnEntryEndingInTmpThatTheQueueDidNotCreateIsLeftAloneAtOpen()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q");
        Directory.CreateDirectory(q);
        Directory.CreateDirectory(Path.Combine(q, "backup.tmp"));
        File.WriteAllText(Path.Combine(q, "notes.tmp"), VictimText);
        File.WriteAllText(Path.Combine(q, "cursors.0123456789abcdef.tmp"), "a grow that crashed before its rename");

        using (var queue = new MmapQueue(q, Options())) queue.Enqueue([1]);

        Assert.True(Directory.Exists(Path.Combine(q, "backup.tmp")));
        Assert.Equal(VictimText, File.ReadAllText(Path.Combine(q, "notes.tmp")));
        Assert.False(File.Exists(Path.Combine(q, "cursors.0123456789abcdef.tmp"))); // the queue's own leftover goes
    }

    [Theory]
    [InlineData("segment")]
    [InlineData("cursors")]
    [InlineData("queue.meta")]
    public void AQueueFileReplacedByALinkToAValidCopyIsRefusedWithAMessageNamingIt(string which)
    {
        using var dir = new TempDir();
        string q = dir.Sub("q");
        using (var queue = new MmapQueue(q, Options()))
        {
            Fill(queue, 10);
            using var reader = queue.OpenReader("c");
            reader.TryRead(out _);
            reader.Commit();
        }
        string name = which == "segment" ? SegmentName(0) : which;
        string file = Path.Combine(q, name), copy = dir.Sub(name + ".copy");
        File.Move(file, copy); // a byte-for-byte valid file: only the link may make the open fail
        File.CreateSymbolicLink(file, copy);

        var e = Assert.Throws<QueueCorruptedException>(() => new MmapQueue(q, Options()));
        Assert.Equal(file, e.FilePath);
        Assert.Contains("expected a regular file", e.Message);
        Assert.Contains("found a symbolic link", e.Message);
    }

    [Fact]
    public void AnIndexFileReplacedByALinkIsRebuiltAndItsTargetIsLeftUntouched()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q"), victim = PlantVictim(dir);
        using (var queue = new MmapQueue(q, Options()))
        {
            Fill(queue, 2 * RecordsPerSegment + 1);
            queue.WaitForBackgroundWork();
        }
        string idx = Path.Combine(q, SegmentName(0)[..^4] + ".idx");
        Assert.True(File.Exists(idx), "the roll should have written the index of the sealed segment");
        File.Delete(idx);
        File.CreateSymbolicLink(idx, victim);

        using (var queue = new MmapQueue(q, Options()))
        {
            using var reader = queue.OpenReader(RecordsPerSegment - 2); // a seek that consults segment 0's index
            ReadExpecting(reader, 3);
            queue.WaitForBackgroundWork();
        }
        Assert.Equal(VictimText, File.ReadAllText(victim));
        Assert.True(File.Exists(idx), "the index should have been rebuilt");
        Assert.Null(new FileInfo(idx).LinkTarget); // the link was replaced, not written through
    }

    [Fact]
    public async Task AFifoPlantedAsQueueMetaIsRefusedInsteadOfBlockingTheOpen()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q");
        using (var queue = new MmapQueue(q, Options())) queue.Enqueue([1]);
        string meta = Path.Combine(q, "queue.meta");
        File.Delete(meta);
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [meta]))
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        // Reading a FIFO blocks until a writer comes: the open must refuse it, not wait (bounded here so a
        // regression fails instead of hanging the run).
        Task<QueueCorruptedException> open = Task.Run(() => Assert.Throws<QueueCorruptedException>(() => new MmapQueue(q, Options())));
        QueueCorruptedException e = await open.WaitAsync(TimeSpan.FromSeconds(60)); // TimeoutException: the open blocked
        Assert.Contains("found a FIFO", e.Message);
    }

    [Fact]
    public void AQueuePathWhoseLastComponentIsALinkIsRefused()
    {
        using var dir = new TempDir();
        var (real, link) = LinkedDirectory(dir);

        var e = Assert.Throws<IOException>(() => new MmapQueue(link, Options()));
        Assert.Contains(link, e.Message);
        Assert.Contains("symbolic link", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(real)); // nothing was created through the link
    }

    [Fact]
    public void TheOpenFlagsMeanOnThisArchitectureWhatTheyAreNamed()
    {
        // O_DIRECTORY and O_NOFOLLOW have other values on arm, arm64 and powerpc; the generic ones mean O_DIRECT
        // and O_LARGEFILE there, which would follow every planted link.
        using var dir = new TempDir();
        string file = dir.Sub("file"), link = dir.Sub("link");
        File.WriteAllText(file, "x");
        File.CreateSymbolicLink(link, file);

        Assert.True(Native.Libc.open(file, Native.Libc.O_RDONLY | Native.Libc.O_DIRECTORY | Native.Libc.O_CLOEXEC, 0) < 0);
        Assert.Equal(Native.Libc.ENOTDIR, Native.Libc.LastErrno);
        Assert.True(Native.Libc.open(link, Native.Libc.O_RDONLY | Native.Libc.O_NOFOLLOW | Native.Libc.O_CLOEXEC, 0) < 0);
        Assert.Equal(Native.Libc.ELOOP, Native.Libc.LastErrno);
    }

    [Fact]
    public void AQueuePathUnderALinkedParentOpens()
    {
        using var dir = new TempDir();
        var (real, link) = LinkedDirectory(dir);
        using var queue = new MmapQueue(Path.Combine(link, "q"), Options());
        queue.Enqueue([1]);
        Assert.True(File.Exists(Path.Combine(real, "q", "queue.meta")));
    }

    [Fact]
    public void FilesAre0600AndTheDirectory0700ByDefault()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q");
        FillEveryKindOfFile(q, Options());

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(q));
        AssertEveryFileHasMode(q, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    [Fact]
    public void FilePermissionsWidenedForTheGroupGive0640FilesAndA0750Directory()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q");
        FillEveryKindOfFile(q, Options(o => o.FilePermissions |= UnixFileMode.GroupRead));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                     UnixFileMode.GroupRead | UnixFileMode.GroupExecute, File.GetUnixFileMode(q));
        AssertEveryFileHasMode(q, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
    }

    [Theory]
    [InlineData(0b110_110_000)] // group write: others could plant links
    [InlineData(0b110_100_010)] // other write
    [InlineData(0b111_000_000)] // execute
    [InlineData(0b100_000_000)] // the owner cannot write
    public void FilePermissionsBeyondReadForGroupAndOthersAreRefused(int mode)
    {
        var o = Options(o => o.FilePermissions = (UnixFileMode)mode);
        var e = Assert.Throws<ArgumentException>(o.Validate);
        Assert.Equal(nameof(MmapQueueOptions.FilePermissions), e.ParamName);
        Assert.Contains("0" + Convert.ToString(mode, 8), e.Message);
    }

    [Fact]
    public void AConsumerNameWithALoneSurrogateIsRefusedNotStoredAsAReplacementCharacter()
    {
        using var dir = new TempDir();
        using var queue = new MmapQueue(dir.Sub("q"), Options());
        queue.Enqueue([1]);

        var e = Assert.Throws<ArgumentException>(() => queue.OpenReader("orders-\uD800"));
        Assert.Contains("lone surrogate U+D800", e.Message);
        Assert.Empty(queue.Consumers);
        Assert.False(File.Exists(Path.Combine(dir.Sub("q"), "cursors")));
    }

    [Fact]
    public void AConsumerNameMayTake255BytesOfUtf8ButNot256()
    {
        using var dir = new TempDir();
        using var queue = new MmapQueue(dir.Sub("q"), Options());
        string longest = new string('a', 253) + "é"; // 253 + 2 bytes
        using (var r = queue.OpenReader(longest)) r.Commit();
        Assert.Contains(longest, queue.Consumers.Keys);
        var e = Assert.Throws<ArgumentException>(() => queue.OpenReader(longest + "a"));
        Assert.Contains("has 256", e.Message);
    }

    private static (string Real, string Link) LinkedDirectory(TempDir dir)
    {
        string real = dir.Sub("real"), link = dir.Sub("link");
        Directory.CreateDirectory(real);
        Directory.CreateSymbolicLink(link, real);
        return (real, link);
    }

    private static string PlantVictim(TempDir dir)
    {
        string victim = dir.Sub("victim.txt");
        File.WriteAllText(victim, VictimText);
        return victim;
    }

    /// <summary>queue.meta, lock, segments (one sealed, so an index file), the spare, and the cursors file.</summary>
    private static void FillEveryKindOfFile(string q, MmapQueueOptions options)
    {
        using var queue = new MmapQueue(q, options);
        Fill(queue, 2 * RecordsPerSegment + 1);
        using (var reader = queue.OpenReader("c"))
        {
            Assert.True(reader.TryRead(out _));
            reader.Commit();
        }
        queue.WaitForBackgroundWork();
        string[] names = Directory.GetFiles(q).Select(Path.GetFileName).ToArray()!;
        foreach (string expected in new[] { "queue.meta", "lock", "cursors", SegmentName(0) })
            Assert.Contains(expected, names);
        Assert.Contains(names, n => n.EndsWith(".idx", StringComparison.Ordinal));
    }

    private static void AssertEveryFileHasMode(string q, UnixFileMode expected)
    {
        foreach (string file in Directory.GetFiles(q))
            Assert.True(File.GetUnixFileMode(file) == expected,
                $"{Path.GetFileName(file)}: expected mode {Convert.ToString((int)expected, 8)}, found {Convert.ToString((int)File.GetUnixFileMode(file), 8)}");
    }
}
