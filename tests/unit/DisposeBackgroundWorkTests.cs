using Microsoft.Extensions.Logging;

namespace MmapQueues.Tests;

/// <summary>
/// Dispose against the queue's own background work (the interval flush, index builds, retention passes):
/// it ends that work without failing, still flushes, and touches nothing once it returned.
/// </summary>
public class DisposeBackgroundWorkTests
{
    /// <summary>
    /// A timer loop (the interval flush, the age retention) whose tick fails to open a queue file for lack of
    /// permission (a segment reopened after its mode was changed under the queue) reports it and ticks again,
    /// as for an I/O error; a faulted loop would stop flushing silently and make Dispose throw before its flush.
    /// </summary>
    [Fact]
    public void ATimerTickDeniedAccessToAFileIsReportedAndTheLoopGoesOn()
    {
        int ticks = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        using var tickedAgain = new ManualResetEventSlim();
        var loop = new PeriodicWork(TimeSpan.FromMilliseconds(1), () =>
        {
            if (Interlocked.Increment(ref ticks) == 1) throw new UnauthorizedAccessException("open of a segment failed: errno 13");
            tickedAgain.Set();
        }, failures.Enqueue);

        Assert.True(tickedAgain.Wait(TimeSpan.FromSeconds(30)), "the loop stopped after the failed tick");
        loop.Stop(); // throws if the loop faulted
        Assert.IsType<UnauthorizedAccessException>(Assert.Single(failures));
    }

    /// <summary>
    /// A claim open across a roll holds up the sealed segment's index build, which Dispose waits for after
    /// marking the queue disposed; meanwhile the 1 ms interval timer ticks and its Flush meets the disposed
    /// queue. Dispose must end the timer loop quietly and still make every record durable.
    /// </summary>
    [Fact]
    public void DisposeWhileTheIntervalFlushTicksNeitherThrowsNorSkipsItsFinalFlush()
    {
        for (int round = 0; round < 3; round++)
        {
            using var dir = new TempDir();
            var options = QueueTestKit.Options(o => { o.FlushMode = FlushMode.Interval; o.FlushInterval = TimeSpan.FromMilliseconds(1); });
            var q = new MmapQueue(dir.Path, options);
            using var inClaim = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            var claimer = new Thread(() => q.Enqueue(100, 0, (span, _) =>
            {
                inClaim.Set();
                release.Wait();
                span.Fill(7);
            }));
            claimer.Start();
            Assert.True(inClaim.Wait(TimeSpan.FromSeconds(30)), "the claim did not start");
            QueueTestKit.Fill(q, QueueTestKit.RecordsPerSegment + 1, settle: false); // rolls: segment 0's index build waits for the claim
            Assert.Equal(2, q.Segments.Length);
            long appended = q.NextSequence;

            Exception? disposeFailure = null;
            var disposer = new Thread(() => disposeFailure = Record.Exception(q.Dispose));
            disposer.Start();
            Thread.Sleep(30); // Dispose waits for the index build; the timer ticks against the disposed queue meanwhile
            release.Set();
            Assert.True(claimer.Join(TimeSpan.FromSeconds(30)), "the claim did not end");
            Assert.True(disposer.Join(TimeSpan.FromSeconds(30)), "Dispose did not return");

            Assert.Null(disposeFailure);
            Assert.Equal(appended, q.DurableSequence);
        }
    }

    /// <summary>
    /// A consumer's commit runs a retention pass on its own thread; the pass is paused (in its log line for
    /// the deleted segment, event 1012) while Dispose runs. Once Dispose returned, the pass must not go on
    /// changing the directory (another process may hold the queue by then): Dispose waits for it.
    /// </summary>
    [Fact]
    public void ARetentionPassStartedByACommitBeforeDisposeDoesNotTouchTheQueueAfterDisposeReturned()
    {
        for (int round = 0; round < 3; round++)
        {
            using var dir = new TempDir();
            using var logs = new PausingLoggerFactory(pauseOnEventId: 1012);
            var q = new MmapQueue(dir.Path, QueueTestKit.Options(), logs);
            var reader = q.OpenReader("c");
            QueueTestKit.Fill(q, 2 * QueueTestKit.RecordsPerSegment + 1);
            QueueTestKit.ReadExpecting(reader, QueueTestKit.RecordsPerSegment + 1); // on segment 1: segment 0 is consumed, not held
            Exception? commitFailure = null;
            var committer = new Thread(() => commitFailure = Record.Exception(reader.Commit));
            committer.Start();
            Assert.True(logs.Paused.Wait(TimeSpan.FromSeconds(30)), "the commit's retention pass did not delete segment 0");

            string[]? filesAtReturn = null;
            Exception? disposeFailure = null;
            var disposer = new Thread(() =>
            {
                disposeFailure = Record.Exception(q.Dispose);
                filesAtReturn = FileNames(dir.Path);
            });
            disposer.Start();
            disposer.Join(TimeSpan.FromMilliseconds(50)); // a Dispose that does not wait for the pass returns meanwhile
            logs.Resume.Set();
            Assert.True(committer.Join(TimeSpan.FromSeconds(30)), "the commit did not end");
            Assert.True(disposer.Join(TimeSpan.FromSeconds(30)), "Dispose did not return");

            Assert.Null(disposeFailure);
            Assert.Null(commitFailure);
            Assert.Equal(filesAtReturn, FileNames(dir.Path));
            Assert.Equal(0, QueueTestKit.OpenFilesUnder(dir.Path));
            reader.Dispose();
        }
    }

    private static string[] FileNames(string dir) =>
        Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    /// <summary>Pauses the thread that logs <c>pauseOnEventId</c> (the first time) until <see cref="Resume"/> is set.</summary>
    private sealed class PausingLoggerFactory(int pauseOnEventId) : ILoggerFactory
    {
        public int PauseOnEventId { get; } = pauseOnEventId;
        public ManualResetEventSlim Paused { get; } = new();
        public ManualResetEventSlim Resume { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);
        public void AddProvider(ILoggerProvider provider) { }

        public void Dispose()
        {
            Resume.Set();
            Paused.Dispose();
            Resume.Dispose();
        }

        private sealed class Logger(PausingLoggerFactory owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (eventId.Id != owner.PauseOnEventId || owner.Paused.IsSet) return;
                owner.Paused.Set();
                owner.Resume.Wait();
            }
        }
    }
}
