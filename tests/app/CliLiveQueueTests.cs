using System.Text;
using MmapQueues.Cli.Commands;
using static MmapQueues.Tests.App.CliTests;

namespace MmapQueues.Tests.App;

/// <summary>
/// The inspection commands against a queue that is being written, consumed and trimmed by retention while
/// they run: a segment can vanish between a command's listing and its read of it.
/// </summary>
public class CliLiveQueueTests
{
    private const string StackTraceLine = "   at ";
    private const int RecordsPerSegment = 8192 / 216; // 200-byte payloads in 8 KiB segments (about)

    [Fact]
    public async Task InspectionCommandsNeverDieWithAStackTraceWhileRetentionDeletesSegments()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Sub("live"), new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false });
        using var stop = new CancellationTokenSource();
        byte[] payload = Encoding.ASCII.GetBytes(new string('x', 200));
        var writer = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                for (int i = 0; i < 40; i++) q.Enqueue(payload); // about one 8 KiB segment a round
                Thread.Sleep(1); // paced, so the consumer keeps up and retention has something to delete
            }
        });
        var consumer = new Thread(() =>
        {
            using QueueReader reader = q.OpenReader("sidecar");
            long read = 0;
            while (!stop.IsCancellationRequested)
            {
                if (reader.TryRead(out _)) { if (++read % 16 == 0) reader.Commit(); } // each commit lets retention delete what it passed
                else Thread.Yield();
            }
        });
        writer.Start();
        consumer.Start();
        TailCommand.PollInterval = TimeSpan.FromMilliseconds(5);
        using var tailStop = new CancellationTokenSource();
        var tailData = new SharedWriter();
        Task<Run> tail = Mmapq(["tail", q.Path, "-f", "-n", "50"], tailStop.Token, tailData);
        var runs = new List<(string Command, Run Run)>();
        long firstBefore = q.FirstSequence;
        // At least 25 rounds, and on until retention deleted 20 segments under them (a hang guard, not a timing assertion).
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        for (int round = 0; round < 25 || (q.FirstSequence < firstBefore + 20 * RecordsPerSegment && !safety.IsCancellationRequested); round++)
        {
            foreach (string[] args in new[] { ["info", q.Path], ["dump", q.Path, "-n", "0"], new[] { "verify", q.Path } })
                runs.Add((args[0], await Mmapq(args)));
            if (tail.IsCompleted) break; // it died: the checks below report how
        }
        long firstAfter = q.FirstSequence;
        tailStop.Cancel();
        runs.Add(("tail -f", await tail));
        stop.Cancel();
        writer.Join();
        consumer.Join();
        foreach (var (command, r) in runs)
        {
            string all = r.Output + r.Data + r.Error;
            Assert.False(all.Contains(StackTraceLine, StringComparison.Ordinal), $"mmapq {command} printed a stack trace:\n{r.Error}{r.Output}");
            Assert.True(r.ExitCode == 0, $"mmapq {command} exited {r.ExitCode}:\n{r.Error}\n{Tail(r.Data)}");
        }
        Assert.True(firstAfter >= firstBefore + 20 * RecordsPerSegment, $"retention deleted too little during the test (first sequence went from {firstBefore} to {firstAfter}; committed {string.Join(",", q.Consumers)}; next {q.NextSequence}, {Directory.GetFiles(q.Path).Length} files): it proved nothing");
    }

    private static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];
}
