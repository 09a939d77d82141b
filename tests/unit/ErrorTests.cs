namespace MmapQueues.Tests;

public class ErrorTests
{
    [Fact]
    public void OversizeRecordIsRefusedNamingBothSizes()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        var e = Assert.Throws<ArgumentException>(() => q.Enqueue(new byte[70_000]));
        Assert.Contains("A record of 70000 bytes does not fit in a segment of 65536 bytes (at most 65464 bytes of payload per record)", e.Message);
        Assert.Equal(0, q.NextSequence);
        q.Enqueue(new byte[q.MaxPayloadBytes]); // the largest allowed fits
        Assert.Equal(1, q.NextSequence);
    }

    [Theory]
    [InlineData(1000L, "SegmentSizeBytes must be from 4096 (4 KiB) to 1073741824 (1 GiB); found 1000.")]
    [InlineData(2L << 30, "SegmentSizeBytes must be from 4096 (4 KiB) to 1073741824 (1 GiB); found 2147483648.")]
    [InlineData(10_000L, "SegmentSizeBytes must be a multiple of the page size 4096; found 10000 (1808 bytes over).")]
    public void BadSegmentSizeGivesAClearError(long size, string message)
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = size }));
        Assert.StartsWith(message, e.Message);
        Assert.Equal("SegmentSizeBytes", e.ParamName);
        Assert.Empty(Directory.GetFiles(dir.Path)); // validated before anything is created
    }

    [Fact]
    public void BadFlushIntervalGivesAClearError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => new MmapQueue(dir.Path, new MmapQueueOptions { FlushMode = FlushMode.Interval, FlushInterval = TimeSpan.Zero }));
        Assert.StartsWith("FlushInterval must be more than 0 and at most 1 hour in Interval mode; found 00:00:00.", e.Message);
        var m = Assert.Throws<ArgumentException>(() => new MmapQueue(dir.Path, new MmapQueueOptions { FlushMode = (FlushMode)9 }));
        Assert.StartsWith("FlushMode must be Async, Interval or Sync; found 9.", m.Message);
    }

    [Fact]
    public void SecondWriterOnTheSameDirectoryFailsNamingTheHolder()
    {
        using var dir = new TempDir();
        using var first = new MmapQueue(dir.Path, TestOptions.Small());
        var e = Assert.Throws<IOException>(() => new MmapQueue(dir.Path, TestOptions.Small()));
        Assert.Contains($"is already open for writing by process pid {Environment.ProcessId}", e.Message);
        first.Enqueue([1, 2, 3]); // the first writer is unaffected
    }

    [Fact]
    public void TheLockIsReleasedOnDispose()
    {
        using var dir = new TempDir();
        new MmapQueue(dir.Path, TestOptions.Small()).Dispose();
        using var again = new MmapQueue(dir.Path, TestOptions.Small());
        Assert.Equal(0, again.NextSequence);
    }

    [Fact]
    public void AnOpenThatFailsAfterRecoveryReleasesTheLockAndStopsItsTimers()
    {
        using var dir = new TempDir();
        new MmapQueue(dir.Path, TestOptions.Small()).Dispose();
        var options = TestOptions.Small();
        options.FlushMode = FlushMode.Interval;
        options.FlushInterval = TimeSpan.FromMilliseconds(1);

        // The last steps of opening (metrics, timers, the first retention pass) run after recovery; one failing
        // there must not leave the directory locked by a queue object nobody can dispose.
        Assert.Throws<InvalidOperationException>(() => new MmapQueue(dir.Path, options, null, new FailingMeterFactory()));

        using var again = new MmapQueue(dir.Path, TestOptions.Small());
        Assert.Equal(0, again.NextSequence);
    }

    private sealed class FailingMeterFactory : System.Diagnostics.Metrics.IMeterFactory
    {
        public System.Diagnostics.Metrics.Meter Create(System.Diagnostics.Metrics.MeterOptions options) =>
            throw new InvalidOperationException("this meter factory refuses every meter");

        public void Dispose() { }
    }

    [Fact]
    public void ReaderOutsideTheStoredRangeIsRefused()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        q.Enqueue([1]);
        ArgumentOutOfRangeException e = Assert.Throws<SequenceOutOfRangeException>(() => q.OpenReader(5)); // issue 3: a subclass saying which side
        Assert.Contains("Sequence 5 is not written yet", e.Message);
        Assert.Contains("(the queue holds [0, 1))", e.Message);
    }

    [Fact]
    public void UseAfterDisposeThrowsObjectDisposed()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, TestOptions.Small());
        q.Dispose();
        Assert.Throws<ObjectDisposedException>(() => q.Enqueue([1]));
        Assert.Throws<ObjectDisposedException>(() => q.Flush());
    }
}

public class DirectoryFsyncFailureTests
{
    [Fact]
    public void AFlushWhoseDirectoryFsyncFailedDoesNotLetTheNextFlushSkipIt()
    {
        using var dir = new TempDir();
        string moved = dir.Path + ".moved";
        var q = new MmapQueue(dir.Path, QueueTestKit.Options());
        try
        {
            QueueTestKit.Fill(q, QueueTestKit.RecordsPerSegment + 1); // rolls: a rename the directory fsync must cover
            Assert.Equal(2, q.Segments.Length);
            q.WaitForBackgroundWork();
            long before = q.DurableSequence;
            using var holder = q.OpenReader(0); // keeps segment 0 mapped: the flush must not need to reopen it by path
            Directory.Move(dir.Path, moved); // the directory cannot be opened for fsync; the mappings still msync
            try
            {
                Assert.ThrowsAny<IOException>(() => q.Flush());
                Assert.Equal(before, q.DurableSequence);
                Assert.ThrowsAny<IOException>(() => q.Flush()); // the rename is still not fsynced: nothing may be reported durable
                Assert.Equal(before, q.DurableSequence);
            }
            finally
            {
                Directory.Move(moved, dir.Path);
            }
            q.Flush();
            Assert.Equal(q.NextSequence, q.DurableSequence);
        }
        finally
        {
            q.Dispose();
        }
    }
}
