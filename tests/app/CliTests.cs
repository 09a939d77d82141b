using System.Text;
using System.Text.Json;
using MmapQueues.Cli;
using MmapQueues.Cli.Commands;
using MmapQueues.Format;
using Spectre.Console;

namespace MmapQueues.Tests.App;

public class CliTests
{
    private const int PayloadLength = 20;

    /// <summary>A queue of <paramref name="count"/> records "record NNNNNNNNNN..." in 8 KiB segments, closed.</summary>
    private static string MakeQueue(TempDir dir, int count, string name = "q")
    {
        string path = dir.Sub(name);
        using var q = new MmapQueue(path, new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false });
        for (int i = 0; i < count; i++) q.Enqueue(Encoding.ASCII.GetBytes($"record {i,13}"));
        return path;
    }

    internal sealed class Run
    {
        public int ExitCode;
        public string Output = "";
        public string Data = "";
        public string Error = "";
    }

    internal static async Task<Run> Mmapq(string[] args, CancellationToken ct = default, TextWriter? data = null)
    {
        var console = new StringWriter();
        data ??= new StringWriter();
        var error = new StringWriter();
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(console),
        });
        ansi.Profile.Width = 200;
        int code = await MmapqCli.RunAsync(args, new CliIo(ansi, TextWriter.Synchronized(data), error), ct);
        return new Run { ExitCode = code, Output = console.ToString(), Data = data.ToString() ?? "", Error = error.ToString() };
    }

    [Fact]
    public async Task InfoShowsTheSequencesAndATableOfSegments()
    {
        using var dir = new TempDir();
        string q = MakeQueue(dir, 500);
        Run r = await Mmapq(["info", q]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("[0, 500)", r.Output);
        Assert.Contains("500 records stored", r.Output);
        Assert.Contains("00000000000000000000.seg", r.Output);
        Assert.Contains("active", r.Output);
        Assert.Contains("sealed", r.Output);
    }

    [Fact]
    public async Task VerifyPassesACleanQueueWithExitCodeZero()
    {
        using var dir = new TempDir();
        string q = MakeQueue(dir, 500);
        Run r = await Mmapq(["verify", q]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("OK: 500 records", r.Data);
    }

    [Fact]
    public async Task VerifyOnACorruptedCopyExitsOneAndPrintsTheFileAndOffset()
    {
        using var dir = new TempDir();
        string q = MakeQueue(dir, 100);
        string copy = dir.Sub("copy");
        Directory.CreateDirectory(copy);
        foreach (string f in Directory.GetFiles(q)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        string segment = Path.Combine(copy, "00000000000000000000.seg");
        int frame = SegmentLayout.FrameLength(PayloadLength);
        long badOffset = SegmentLayout.FirstRecordOffset + 5L * frame;
        using (var fs = new FileStream(segment, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = badOffset + SegmentLayout.RecordHeaderSize + 3; // one payload byte of record 5
            int b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0x40));
        }
        Run bad = await Mmapq(["verify", copy]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains($"BAD {segment} offset {badOffset}: sequence 5: expected CRC32C", bad.Data);
        Run original = await Mmapq(["verify", q]);
        Assert.Equal(0, original.ExitCode); // the copy, not the original, was damaged
    }

    [Fact]
    public async Task DumpPrintsJsonFromASequenceWithALimit()
    {
        using var dir = new TempDir();
        string q = MakeQueue(dir, 300);
        Run r = await Mmapq(["dump", q, "--from", "250", "--limit", "3", "--format", "json"]);
        Assert.Equal(0, r.ExitCode);
        var lines = r.Data.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal(250, first.RootElement.GetProperty("sequence").GetInt64());
        Assert.Equal($"record {250,13}", first.RootElement.GetProperty("text").GetString());
        Assert.Equal(Encoding.ASCII.GetBytes($"record {250,13}"), first.RootElement.GetProperty("payload").GetBytesFromBase64());
        Assert.Equal(252, JsonDocument.Parse(lines[2]).RootElement.GetProperty("sequence").GetInt64());
    }

    [Fact]
    public async Task DumpAsTextAndHex()
    {
        using var dir = new TempDir();
        string q = MakeQueue(dir, 10);
        Run text = await Mmapq(["dump", q, "--from", "7", "-n", "1"]);
        Assert.Equal($"7\t{PayloadLength}\trecord {7,13}\n", text.Data.Replace("\r\n", "\n"));
        Run hex = await Mmapq(["dump", q, "--from", "0", "-n", "1", "--format", "hex"]);
        Assert.Contains("# sequence 0, 20 bytes at 00000000000000000000.seg offset 64", hex.Data);
        Assert.Contains("00000000  72 65 63 6f 72 64 20", hex.Data); // "record "
    }

    [Fact]
    public async Task DumpOfASequenceNotStoredIsAClearError()
    {
        using var dir = new TempDir();
        string q = MakeQueue(dir, 10);
        Run r = await Mmapq(["dump", q, "--from", "11"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("sequence 11 is not stored", r.Error);
        Assert.Contains("[0, 10)", r.Error);
    }

    [Fact]
    public async Task MissingAndForeignDirectoriesGetClearErrors()
    {
        using var dir = new TempDir();
        Run missing = await Mmapq(["info", dir.Sub("nope")]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains($"Queue directory {dir.Sub("nope")} does not exist.", missing.Error);
        File.WriteAllText(dir.Sub("notes.txt"), "hello");
        Run foreign = await Mmapq(["verify", dir.Path]);
        Assert.Equal(2, foreign.ExitCode);
        Assert.Contains($"{dir.Path} is not an MmapQueue directory: expected queue.meta, but it holds notes.txt", foreign.Error);
    }

    [Fact]
    public async Task InspectionWorksWhileAWriterHoldsTheQueue()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Sub("live"), new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false });
        for (int i = 0; i < 300; i++) q.Enqueue(Encoding.ASCII.GetBytes($"record {i,13}"));
        Run verify = await Mmapq(["verify", q.Path]);
        Assert.Equal(0, verify.ExitCode);
        Assert.Contains("OK: 300 records", verify.Data);
        Run info = await Mmapq(["info", q.Path]);
        Assert.Contains($"pid {Environment.ProcessId} (running)", info.Output);
        q.Enqueue("still writable"u8); // the inspection took no lock and wrote nothing
    }

    [Fact]
    public async Task TailFollowPrintsRecordsAsTheyAreAppendedAcrossSegments()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Sub("live"), new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false });
        for (int i = 0; i < 5; i++) q.Enqueue(Encoding.ASCII.GetBytes($"old {i}"));
        TailCommand.PollInterval = TimeSpan.FromMilliseconds(10);
        using var cts = new CancellationTokenSource();
        var data = new SharedWriter(); // read here while the tail command writes to it
        Task<Run> tail = Mmapq(["tail", q.Path, "-n", "2", "-f"], cts.Token, data);
        for (int i = 0; i < 400; i++) q.Enqueue(Encoding.ASCII.GetBytes($"new {i}")); // several rolls of 8 KiB segments
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a hang guard, not a timing assertion
        while (!data.ToString().Contains("\tnew 399\n") && !safety.IsCancellationRequested) await Task.Delay(10);
        // It follows through a read-only queue (zero-copy): its reader's lease is in readers/ while it runs.
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(q.Path, "readers"), "*.lease"));
        cts.Cancel();
        Run r = await tail;
        Assert.Equal(0, r.ExitCode);
        Assert.Empty(Directory.GetFiles(Path.Combine(q.Path, "readers"), "*.lease")); // removed when it stopped
        var lines = r.Data.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(402, lines.Length);
        Assert.Equal("3\t5\told 3", lines[0]);
        Assert.Equal("4\t5\told 4", lines[1]);
        for (int i = 0; i < 400; i++) Assert.EndsWith($"\tnew {i}", lines[i + 2]);
    }

    [Fact]
    public async Task DemoRunsIntoTheGivenDirectory()
    {
        using var dir = new TempDir();
        Run r = await Mmapq(["demo", dir.Sub("demo"), "--count", "1000"]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Data}\n{r.Output}\n{r.Error}");
        Assert.Contains("read back 1,000 records", r.Data);
        Run verify = await Mmapq(["verify", dir.Sub("demo")]);
        Assert.Equal(0, verify.ExitCode);
    }
}
