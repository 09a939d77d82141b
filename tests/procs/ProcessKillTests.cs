namespace MmapQueues.Tests.Procs;

/// <summary>
/// A writer process and two reader processes (one anonymous, one named and committing) over one queue, each killed
/// (SIGKILL) and restarted at random moments. Cycles: 8 by default (CI), <c>MMAPQ_PROCS_KILL_CYCLES</c> raises them
/// (the issue asks for 100 or more).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Collection(nameof(ProcessKillTests))] // alone: its many forks would hold other tests' locked descriptors until their exec
public sealed class ProcessKillTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Segment = "16384"; // ~400 records: rolls, retention and recycling all the time
    private const string Consumer = "shipper";

    [Fact]
    public void KilledWritersAndReadersNeverDeliverAStaleRecordNorLoseOneAndNothingIsFreedUnderALiveReader()
    {
        int cycles = int.TryParse(Environment.GetEnvironmentVariable("MMAPQ_PROCS_KILL_CYCLES"), out int n) && n > 0 ? n : 8;
        var random = new Random(Environment.TickCount);
        using var dir = new TempDir();
        var writer = StartWriter(dir.Path);
        var anonymous = new Follower(dir.Path, "-");
        var named = new Follower(dir.Path, Consumer);
        int writerKills = 0;
        try
        {
            for (int cycle = 0; cycle < cycles; cycle++)
            {
                Thread.Sleep(random.Next(20, 250));
                switch (random.Next(3))
                {
                    case 0:
                        writer.Kill();
                        writer.Dispose();
                        writerKills++;
                        writer = StartWriter(dir.Path);
                        break;
                    case 1:
                        anonymous.KillAndRestart();
                        break;
                    default:
                        named.KillAndRestart();
                        break;
                }
            }
            writer.Send("stop");
            string stopped = writer.ReadLine();
            Assert.StartsWith("STOPPED ", stopped);
            long end = long.Parse(stopped["STOPPED ".Length..]);
            writer.Finish();
            anonymous.WaitUntilAt(end);
            named.WaitUntilAt(end);
            named.Finish();
            anonymous.Finish();
            // Gaps are records a reader never saw between two it read: only aborted claims of a killed writer (one
            // producer thread: at most one claim open per kill) may make them.
            Assert.InRange(anonymous.Gaps, 0, writerKills);
            Assert.InRange(named.Gaps, 0, writerKills);
            using var queue = new MmapQueue(dir.Path, new MmapQueueOptions { ReadOnly = true });
            Assert.Equal(end, queue.Consumers[Consumer]);
            Assert.True(queue.FirstSequence > 0, "retention freed nothing: the test did not exercise freeing beside live readers");
            output.WriteLine($"{cycles} cycles, {writerKills} writer kills, {end} records, first stored {queue.FirstSequence}, " +
                             $"gaps (aborted claims) anonymous {anonymous.Gaps}, named {named.Gaps}");
        }
        finally
        {
            writer.Dispose();
            anonymous.Dispose();
            named.Dispose();
        }
    }

    private static ChildProcess StartWriter(string dir)
    {
        var writer = ChildProcess.Start("produce", dir, Segment);
        writer.Expect("READY");
        return writer;
    }

    /// <summary>A reader process, restarted after each kill; checks at-least-once across its restarts.</summary>
    private sealed class Follower(string dir, string name) : IDisposable
    {
        private ChildProcess _child = Start(dir, name, out long _);
        private long _lastCommit = -1;   // the last position the named consumer reported durable
        private long _at;

        private static ChildProcess Start(string dir, string name, out long start)
        {
            var child = ChildProcess.Start("follow", dir, name);
            string line = child.ReadLine();
            Assert.StartsWith("START ", line);
            start = long.Parse(line["START ".Length..]);
            return child;
        }

        public void KillAndRestart()
        {
            DrainLines();
            _child.Kill();
            _child.Dispose();
            _gapsBefore += _gapsThisRun; // gaps are counted per run: a restart starts a new count
            _gapsThisRun = 0;
            _child = Start(dir, name, out long start);
            if (name != "-") // resumes at its last durable commit: not before it (a commit undone), never past what it read
                Assert.True(_lastCommit < 0 || start >= _lastCommit, $"{name} resumed at {start}, before its durable commit {_lastCommit}");
        }

        /// <summary>Reads the lines printed so far (COMMIT, AT) without waiting for more.</summary>
        private void DrainLines()
        {
            while (_child.TryReadLine(TimeSpan.FromMilliseconds(1)) is { } line) Note(line);
        }

        private void Note(string line)
        {
            string[] parts = line.Split(' ');
            if (parts[0] == "COMMIT") _lastCommit = long.Parse(parts[1]);
            if (parts[0] != "AT") return;
            _at = long.Parse(parts[1]);
            _gapsThisRun = long.Parse(parts[3]);
        }

        private long _gapsThisRun, _gapsBefore;

        public long Gaps => _gapsBefore + _gapsThisRun;

        public void WaitUntilAt(long end)
        {
            while (_at < end) Note(_child.ReadLine()); // ReadLine fails the test after a minute of silence
            Assert.Equal(end, _at);
        }

        public void Finish() => _child.Finish();

        public void Dispose() => _child.Dispose();
    }
}

/// <summary>Runs <see cref="ProcessKillTests"/> with no other test class beside it.</summary>
[CollectionDefinition(nameof(ProcessKillTests), DisableParallelization = true)]
public sealed class ProcessKillCollection;
