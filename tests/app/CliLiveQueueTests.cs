using System.Diagnostics;
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
    private const int SegmentsToDelete = 20;

    [Fact]
    public async Task InspectionCommandsNeverDieWithAStackTraceWhileRetentionDeletesSegments()
    {
        using var dir = new TempDir();
        using var live = new LiveQueue(dir.Sub("live"));
        TailCommand.PollInterval = TimeSpan.FromMilliseconds(5);
        using var tailStop = new CancellationTokenSource();
        Task<Run> tail = Mmapq(["tail", live.Path, "-f", "-n", "50"], tailStop.Token, new SharedWriter());
        var runs = new List<(string Command, Run Run)>();
        // At least 25 rounds, and on until retention deleted enough segments under them (a hang guard, not a timing assertion).
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        for (int round = 0; round < 25 || (!live.DeletedEnough && !safety.IsCancellationRequested); round++)
        {
            foreach (string[] args in new[] { ["info", live.Path], ["dump", live.Path, "-n", "0"], new[] { "verify", live.Path } })
                runs.Add((args[0], await Mmapq(args)));
            if (tail.IsCompleted) break; // it died: the checks below report how
        }
        string deleted = live.Deleted;
        bool deletedEnough = live.DeletedEnough;
        tailStop.Cancel();
        runs.Add(("tail -f", await tail));
        live.Dispose();
        foreach (var (command, r) in runs)
        {
            string all = r.Output + r.Data + r.Error;
            Assert.False(all.Contains(StackTraceLine, StringComparison.Ordinal), $"mmapq {command} printed a stack trace:\n{r.Error}{r.Output}");
            Assert.True(r.ExitCode == 0, $"mmapq {command} exited {r.ExitCode}:\n{r.Error}\n{Tail(r.Data)}");
        }
        Assert.True(deletedEnough, $"retention deleted too little while the commands ran ({deleted}): the test proved nothing");
    }

    [Fact]
    public async Task MmapqProcessesNeverDieWithAStackTraceBesideAWriterProcessTrimmingItsQueue()
    {
        using var dir = new TempDir();
        using var live = new LiveQueue(dir.Sub("live")); // this process writes; each mmapq below is a process of its own
        using var tail = MmapqProcess.Start(["tail", live.Path, "-f", "-n", "50"]);
        var runs = new List<(string Command, MmapqProcess.Result Result)>();
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(240)); // a hang guard, not a timing assertion
        for (int round = 0; round < 4 || (!live.DeletedEnough && !safety.IsCancellationRequested); round++)
        {
            foreach (string[] args in new[] { ["info", live.Path], ["dump", live.Path, "-n", "0"], new[] { "verify", live.Path } })
            {
                using var p = MmapqProcess.Start(args);
                runs.Add((args[0], await p.WaitAsync()));
            }
            if (tail.HasExited) break; // it died: the checks below report how
        }
        string deleted = live.Deleted;
        bool deletedEnough = live.DeletedEnough;
        bool tailRanToTheEnd = !tail.HasExited;
        runs.Add(("tail -f", tailRanToTheEnd ? await tail.InterruptAsync() : await tail.WaitAsync()));
        live.Dispose();
        foreach (var (command, r) in runs)
        {
            Assert.False(r.SawStackTrace, $"mmapq {command} printed a stack trace:\n{r.Error}");
            Assert.True(r.ExitCode == 0, $"mmapq {command} exited {r.ExitCode}:\n{r.Error}");
        }
        Assert.True(tailRanToTheEnd, "tail -f ended before it was interrupted");
        Assert.True(deletedEnough, $"retention deleted too little while the commands ran ({deleted}): the test proved nothing");
    }

    [Fact]
    public async Task AWalkOverAListingWhoseSegmentsWereDeletedGoesOnAtTheNextOneAndSaysWhichRecordsItSkipped()
    {
        using var dir = new TempDir();
        string path = dir.Sub("q");
        using (var q = new MmapQueue(path, new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false }))
            for (int i = 0; i < 1000; i++) q.Enqueue(Encoding.ASCII.GetBytes($"record {i,13}"));
        var inspector = MmapQueues.Storage.QueueInspector.Open(path);
        var segments = inspector.ListSegments();
        Assert.True(segments.Count >= 4);
        File.Delete(segments[0].Path); // as retention would, after the listing
        File.Delete(segments[1].Path);
        var seen = new List<long>();
        var skips = new List<(long From, long To, string File)>();
        Cli.WalkPosition end = Cli.RecordWalk.Walk(inspector, segments, 0, (in MmapQueues.Storage.InspectedRecord r) =>
        {
            seen.Add(r.Sequence);
            return true;
        }, (from, to, file) => skips.Add((from, to, file)));
        long resumed = segments[2].BaseSequence;
        Assert.Equal([(0L, resumed, segments[0].Path)], skips);
        Assert.Equal(Enumerable.Range((int)resumed, 1000 - (int)resumed).Select(i => (long)i), seen);
        Assert.Equal(1000, end.Sequence);

        var error = new StringWriter();
        Cli.RecordWalk.ReportTo(new Cli.CliIo(Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings()), TextWriter.Null, error))(0, resumed, segments[0].Path);
        Assert.Equal($"note: records [0, {resumed}) were deleted by retention before mmapq could read them ({Path.GetFileName(segments[0].Path)} was gone); going on at {resumed}\n",
            error.ToString());

        Run dump = await Mmapq(["dump", path, "-n", "0"]); // lists again: the queue as it is now, nothing to skip
        Assert.Equal(0, dump.ExitCode);
        Assert.StartsWith($"{resumed}\t", dump.Data);
    }

    private static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];

    /// <summary>
    /// A queue of 8 KiB segments that a thread fills (about a segment a millisecond, paced) while a named
    /// consumer reads and commits every 16 records, so retention deletes segments all the time.
    /// </summary>
    private sealed class LiveQueue : IDisposable
    {
        private const int RecordsPerSegment = (8192 - 64) / 208; // 208-byte frames after a 64-byte header
        private readonly MmapQueue _queue;
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread _writer, _consumer;
        private readonly long _firstBefore;
        private Exception? _failure;

        public LiveQueue(string path)
        {
            _queue = new MmapQueue(path, new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false });
            _firstBefore = _queue.FirstSequence;
            byte[] payload = Encoding.ASCII.GetBytes(new string('x', 200));
            _writer = new Thread(() => Guard(() =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    for (int i = 0; i < 40; i++) _queue.Enqueue(payload);
                    Thread.Sleep(1); // paced, so the consumer keeps up and retention has something to delete
                }
            }));
            _consumer = new Thread(() => Guard(() =>
            {
                using QueueReader reader = _queue.OpenReader("sidecar");
                long read = 0;
                while (!_stop.IsCancellationRequested)
                {
                    if (reader.TryRead(out _)) { if (++read % 16 == 0) reader.Commit(); } // each commit lets retention delete what it passed
                    else Thread.Yield();
                }
            }));
            _writer.Start();
            _consumer.Start();
        }

        public string Path => _queue.Path;

        public bool DeletedEnough => _queue.FirstSequence >= _firstBefore + SegmentsToDelete * RecordsPerSegment;

        public string Deleted => $"first sequence went from {_firstBefore} to {_queue.FirstSequence}, the queue ends at {_queue.NextSequence}";

        private void Guard(Action work)
        {
            try { work(); }
            catch (Exception e) { _failure = e; }
        }

        public void Dispose()
        {
            if (_stop.IsCancellationRequested) return;
            _stop.Cancel();
            // A hang guard, not a timing assertion: a writer or consumer stuck inside the queue is a deadlock to report.
            if (!_writer.Join(TimeSpan.FromSeconds(60))) throw new TimeoutException($"the writer thread did not stop ({Deleted})");
            if (!_consumer.Join(TimeSpan.FromSeconds(60))) throw new TimeoutException($"the consumer thread did not stop ({Deleted})");
            _queue.Dispose();
            _stop.Dispose();
            if (_failure is not null) throw new InvalidOperationException("the writer or the consumer failed", _failure);
        }
    }

    /// <summary>The real mmapq program (built beside the tests) in a child process.</summary>
    private sealed class MmapqProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _error = new();
        private volatile bool _sawStackTrace;

        public sealed record Result(int ExitCode, string Error, bool SawStackTrace);

        private MmapqProcess(Process process) => _process = process;

        public static MmapqProcess Start(string[] args)
        {
            var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(System.IO.Path.Combine(AppContext.BaseDirectory, "mmapq.dll"));
            foreach (string a in args) psi.ArgumentList.Add(a);
            psi.Environment["DOTNET_TieredPGO"] = "0"; // fewer background JIT threads on a shared 2-core machine
            var p = new MmapqProcess(Process.Start(psi) ?? throw new InvalidOperationException("could not start mmapq"));
            p._process.OutputDataReceived += (_, e) => p.Saw(e.Data, keep: false); // records: only looked at, not kept
            p._process.ErrorDataReceived += (_, e) => p.Saw(e.Data, keep: true);
            p._process.BeginOutputReadLine();
            p._process.BeginErrorReadLine();
            return p;
        }

        public bool HasExited => _process.HasExited;

        public async Task<Result> WaitAsync()
        {
            try
            {
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120)); // a hang guard, not a timing assertion
            }
            catch (TimeoutException)
            {
                string args = string.Join(' ', _process.StartInfo.ArgumentList.Skip(1));
                _process.Kill();
                lock (_error) throw new TimeoutException($"mmapq {args} did not exit within 120 s; its stderr:\n{_error}");
            }
            _process.WaitForExit(); // and for the end of both streams
            lock (_error) return new Result(_process.ExitCode, _error.ToString(), _sawStackTrace);
        }

        /// <summary>
        /// SIGTERM, as a service manager stops a sidecar; mmapq stops on it as on Ctrl+C. Not SIGINT: a test run
        /// started from a script's background job inherits SIGINT ignored, and so would this child.
        /// </summary>
        public Task<Result> InterruptAsync()
        {
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()]))
            {
                kill.WaitForExit();
                if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -TERM {_process.Id} exited {kill.ExitCode}");
            }
            return WaitAsync();
        }

        private void Saw(string? line, bool keep)
        {
            if (line is null) return;
            if (line.StartsWith(StackTraceLine, StringComparison.Ordinal)) _sawStackTrace = true;
            if (keep) lock (_error) _error.AppendLine(line);
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill();
            _process.Dispose();
        }
    }
}
