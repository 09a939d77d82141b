using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

public class CapacityTests
{
    private const int R = RecordsPerSegment;
    private const long FourSegments = 4 * SegmentSize;

    private static MmapQueue Full(TempDir dir, QueueFullPolicy policy, Action<MmapQueueOptions>? change = null, CapturingLoggerFactory? log = null)
    {
        var q = new MmapQueue(dir.Path, Options(o =>
        {
            o.MaxQueueSizeBytes = FourSegments;
            o.FullPolicy = policy;
            change?.Invoke(o);
        }), log);
        Fill(q, 4 * R); // four full segments: the next record needs a fifth
        return q;
    }

    [Fact]
    public void RejectMakesTryEnqueueReturnFalseAndEnqueueThrowNamingTheLimit()
    {
        using var dir = new TempDir();
        using var q = Full(dir, QueueFullPolicy.Reject);
        using var billing = q.OpenReader("billing");
        Assert.False(q.TryEnqueue(Payload(4 * R), out long seq));
        var e = Assert.Throws<QueueFullException>(() => q.Enqueue(Payload(4 * R)));
        Assert.Equal(FourSegments, e.MaxQueueSizeBytes);
        Assert.Equal(QueueFullPolicy.Reject, e.Policy);
        Assert.StartsWith($"Queue {q.Path} is full: MaxQueueSizeBytes is {FourSegments} (4 segments of {SegmentSize} bytes in use) " +
                          $"and FullPolicy is Reject; the slowest consumer 'billing' has committed up to 0 of {4 * R}.", e.Message);
        Assert.Equal(4 * R, q.NextSequence); // nothing appended

        billing.Seek(R);
        billing.Commit(); // segment 0 is consumed: retention frees it
        Assert.True(q.TryEnqueue(Payload(4 * R), out seq));
        Assert.Equal(4 * R, seq);
    }

    [Fact]
    public void BlockGivesUpAfterItsTimeoutWithAnErrorNamingTheLimit()
    {
        using var dir = new TempDir();
        using var q = Full(dir, QueueFullPolicy.Block, o => o.FullBlockTimeout = TimeSpan.FromMilliseconds(50));
        var e = Assert.Throws<QueueFullException>(() => q.Enqueue(Payload(4 * R)));
        Assert.Equal(QueueFullPolicy.Block, e.Policy);
        Assert.Contains("FullPolicy is Block; waited FullBlockTimeout 00:00:00.0500000 for consumers to free space; " +
                        "no named consumer is registered, so only RetentionAge frees segments.", e.Message);
        Assert.False(q.TryEnqueue(Payload(4 * R), out _)); // TryEnqueue never waits
        Assert.Equal(4 * R, q.NextSequence);
    }

    [Fact]
    public async Task BlockEndsWhenTheCallerCancels()
    {
        using var dir = new TempDir();
        var log = new CapturingLoggerFactory();
        using var q = Full(dir, QueueFullPolicy.Block, o => o.FullBlockTimeout = Timeout.InfiniteTimeSpan, log);
        using var cts = new CancellationTokenSource();
        var producer = Task.Run(() => q.Enqueue(Payload(4 * R), cts.Token));
        log.WaitFor(1037); // ProducerBlocked
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => producer);
        Assert.Equal(4 * R, q.NextSequence);
    }

    [Fact]
    public async Task BlockResumesWhenAConsumerCommitFreesASegment()
    {
        using var dir = new TempDir();
        var log = new CapturingLoggerFactory();
        using var q = Full(dir, QueueFullPolicy.Block, o => o.FullBlockTimeout = Timeout.InfiniteTimeSpan, log);
        using var billing = q.OpenReader("billing");
        var producer = Task.Run(() => q.Enqueue(Payload(4 * R)));
        log.WaitFor(1037);
        Assert.False(producer.IsCompleted);
        ReadExpecting(billing, R + 1); // now on segment 1
        billing.Commit();
        Assert.Equal(4 * R, await producer);
        Assert.Equal(R, q.FirstSequence);
        Assert.Equal(0, q.DroppedRecords);
    }

    [Fact]
    public void DropOldestDeletesTheOldestSegmentsCountsAndLogsTheDrops()
    {
        using var dir = new TempDir();
        var log = new CapturingLoggerFactory();
        using var q = Full(dir, QueueFullPolicy.DropOldest, log: log);
        using (var billing = q.OpenReader("billing"))
        {
            ReadExpecting(billing, 10);
            billing.Commit();
        }
        using var reader = q.OpenReader(R - 1); // on segment 0, last record
        Assert.True(reader.TryRead(out var view));

        Fill(q, 2 * R); // needs two more segments: drops segments 0 and 1
        Assert.Equal(2 * R, q.FirstSequence);
        Assert.Equal(2 * R - 10, q.DroppedRecords); // billing had read 10 of them
        var drops = log.WithId(1030).ToArray(); // RecordsDropped
        Assert.Equal(2, drops.Length);
        Assert.All(drops, d => Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, d.Level));
        Assert.StartsWith($"Dropped {R - 10} records of {q.Path} from sequence 10 before every consumer read them: MaxQueueSizeBytes (FullPolicy DropOldest)", drops[0].Message);
        Assert.Contains(log.WithId(1012), e => e.Message.Contains("the queue reached MaxQueueSizeBytes 262144 and FullPolicy is DropOldest"));

        Assert.True(view.SequenceEqual(Payload(R - 1)), "the view of a dropped segment stays valid while its reader is on it");
        Assert.True(File.Exists(Path.Combine(dir.Path, SegmentName(0))), "unlinked only when the reader leaves");
        Assert.True(reader.TryRead(out var next)); // skips the dropped records to the first retained one
        Assert.True(next.SequenceEqual(Payload(2 * R)), "the record after the gap should be the first retained one");
        Assert.Equal(2 * R + 1, reader.NextSequence);
        q.WaitForBackgroundWork(); // an index build may hold it for a moment; its release unlinks it then
        Assert.False(File.Exists(Path.Combine(dir.Path, SegmentName(0))));
        Assert.Contains(log.WithId(1032), e => e.Message.Contains($"skipped sequences [{R}, {2 * R})"));

        using var again = q.OpenReader("billing");
        Assert.Equal(2 * R, again.NextSequence);
    }

    [Fact]
    public void TryEnqueueUnderDropOldestDropsAndSucceeds()
    {
        using var dir = new TempDir();
        using var q = Full(dir, QueueFullPolicy.DropOldest);
        Assert.True(q.TryEnqueue(Payload(4 * R), out long seq));
        Assert.Equal(4 * R, seq);
        Assert.Equal(R, q.DroppedRecords);
    }

    [Theory]
    [InlineData(-1, "MaxQueueSizeBytes must be 0 (no limit) or at least two segments; found -1.")]
    [InlineData(100_000, "MaxQueueSizeBytes must be 0 (no limit) or at least two segments (131072 bytes with SegmentSizeBytes 65536); found 100000.")]
    public void CapacityOptionsOutOfRangeAreRefused(long max, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => Options(o => o.MaxQueueSizeBytes = max).Validate());
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void ANonPositiveRetentionAgeIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => Options(o => o.RetentionAge = TimeSpan.Zero).Validate());
        Assert.StartsWith("RetentionAge must be more than 0, or null for no age limit; found 00:00:00.", e.Message);
    }
}
