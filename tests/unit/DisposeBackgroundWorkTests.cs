namespace MmapQueues.Tests;

/// <summary>
/// Dispose against the queue's own background work (the interval flush, index builds, retention passes):
/// it ends that work without failing, still flushes, and touches nothing once it returned.
/// </summary>
public class DisposeBackgroundWorkTests
{
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
}
