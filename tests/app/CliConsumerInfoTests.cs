using System.Text;
using MmapQueues.Cli;
using MmapQueues.Format;
using static MmapQueues.Tests.App.CliTests;

namespace MmapQueues.Tests.App;

public class CliConsumerInfoTests
{
    private static MmapQueue Open(string path) =>
        new(path, new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false });

    [Fact]
    public async Task InfoNamesTheProcessThatHoldsEachConsumerAndADashForOnesNobodyHolds()
    {
        using var dir = new TempDir();
        using var q = Open(dir.Sub("q"));
        q.Enqueue("one"u8);
        using (q.OpenReader("idle")) { }
        using QueueReader held = q.OpenReader("held");
        Run r = await Mmapq(["info", q.Path]);
        Assert.Equal(0, r.ExitCode);
        string heldRow = r.Output.Split('\n').Single(l => l.StartsWith("│ held ", StringComparison.Ordinal));
        string idleRow = r.Output.Split('\n').Single(l => l.StartsWith("│ idle ", StringComparison.Ordinal));
        Assert.True(heldRow.Contains($"pid {Environment.ProcessId}"), r.Output);
        Assert.Contains("—", idleRow);
    }

    [Fact]
    public async Task InfoListsEachNamedConsumerWithItsPositionAndLag()
    {
        using var dir = new TempDir();
        using var q = Open(dir.Sub("q"));
        for (int i = 0; i < 100; i++) q.Enqueue(Encoding.ASCII.GetBytes($"record {i,13}"));
        using (QueueReader fast = q.OpenReader("fast"))
        {
            for (int i = 0; i < 90; i++) Assert.True(fast.TryRead(out _));
            fast.Commit();
        }
        using (QueueReader slow = q.OpenReader("slow"))
        {
            for (int i = 0; i < 25; i++) Assert.True(slow.TryRead(out _));
            slow.Commit();
        }
        Run r = await Mmapq(["info", q.Path]);
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain("cannot read named consumer positions", r.Output);
        Assert.Contains("2 named", r.Output);
        string fastRow = r.Output.Split('\n').Single(l => l.Contains("│ fast "));
        string slowRow = r.Output.Split('\n').Single(l => l.Contains("│ slow "));
        Assert.Matches(@"│ fast\s+│\s+90 │\s+10 │\s+[\d.]+ (B|KiB) │", fastRow);
        Assert.Matches(@"│ slow\s+│\s+25 │\s+75 │\s+[\d.]+ (B|KiB) │", slowRow);
        // 32-byte frames (8 header + 20 payload, 8-aligned): the estimate is near 32 bytes a record.
        Assert.InRange(LagBytes(slowRow), 75 * 28, 75 * 44);
        Assert.InRange(LagBytes(fastRow), 10 * 28, 10 * 44);
    }

    [Fact]
    public async Task InfoEscapesAConsumerNameThatCarriesTerminalControls()
    {
        using var dir = new TempDir();
        using var q = Open(dir.Sub("q"));
        q.Enqueue("x"u8);
        using (q.OpenReader("evil\u001b[2Jname")) { }
        Run r = await Mmapq(["info", q.Path]);
        Assert.Equal(0, r.ExitCode);
        Assert.False(r.Output.Contains('\u001b'), "an escape character reached the terminal");
        Assert.Contains(@"evil\u001b[2Jname", r.Output);
    }

    [Fact]
    public async Task InfoReportsACorruptCursorsFileInOneLineAndExitsOne()
    {
        using var dir = new TempDir();
        string path = dir.Sub("q");
        using (var q = Open(path))
        {
            q.Enqueue("x"u8);
            using (q.OpenReader("c")) { }
        }
        string cursors = Path.Combine(path, "cursors");
        byte[] bytes = File.ReadAllBytes(cursors);
        for (int i = 0; i < bytes.Length; i += CursorsLayout.MinSlotSize) bytes[i + CursorsLayout.HeaderSize] ^= 0xFF; // both slots' first entry
        File.WriteAllBytes(cursors, bytes);
        Run r = await Mmapq(["info", path]);
        Assert.Equal(ExitCodes.Corrupt, r.ExitCode);
        string error = Assert.Single(r.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(cursors, error);
        Assert.Contains("at offset 0: expected at least one cursor slot with a valid CRC32C", error);
        Assert.Contains("found slot 0: CRC32C", error);
        Assert.Contains("segment", r.Output); // the rest of info was still printed
    }

    [Fact]
    public async Task InfoNeverFollowsACursorsFileThatIsALink()
    {
        using var dir = new TempDir();
        string path = dir.Sub("q"), elsewhere = dir.Sub("elsewhere");
        using (var q = Open(path))
        {
            q.Enqueue("x"u8);
            using (q.OpenReader("c")) { }
        }
        string cursors = Path.Combine(path, "cursors");
        File.Move(cursors, elsewhere); // a valid cursors file, but reached through a link
        File.CreateSymbolicLink(cursors, elsewhere);
        Run r = await Mmapq(["info", path]);
        Assert.Equal(ExitCodes.Corrupt, r.ExitCode);
        Assert.Contains("found a symbolic link (not followed", r.Error);
        Assert.DoesNotContain("│ c ", r.Output);
    }

    private static long LagBytes(string row)
    {
        string cell = row.Split('│', StringSplitOptions.TrimEntries)[4];
        string[] parts = cell.Split(' ');
        double n = double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        return (long)(parts[1] == "KiB" ? n * 1024 : n);
    }
}
