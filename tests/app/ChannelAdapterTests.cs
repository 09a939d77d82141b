using System.Text;
using System.Threading.Channels;
using MmapQueues.Format;

namespace MmapQueues.Tests.App;

public class ChannelAdapterTests
{
    private static MmapQueueOptions Small() => new() { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false };

    private static byte[] Record(int i) => Encoding.ASCII.GetBytes($"r{i:D4}");

    [Fact]
    public async Task ItemsArriveInOrderWithTheirSequencesAcrossSegments()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 500; i++) q.Enqueue(Record(i)); // several 8 KiB segments
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a hang guard, not a timing assertion
        ChannelReader<QueueRecord> channel = q.OpenReader(100, OutOfRange.Throw).AsChannelReader(capacity: 8, cts.Token);
        var seen = new List<QueueRecord>();
        await foreach (QueueRecord r in channel.ReadAllAsync(cts.Token))
        {
            seen.Add(r);
            if (seen.Count == 300) _ = Task.Run(() => { for (int i = 500; i < 600; i++) q.Enqueue(Record(i)); }); // appended while waiting
            if (seen.Count == 500) break;
        }
        for (int i = 0; i < 500; i++)
        {
            Assert.Equal(100 + i, seen[i].Sequence);
            Assert.Equal($"r{100 + i:D4}", Encoding.ASCII.GetString(seen[i].Payload.Span));
        }
        await Stop(cts, channel);
    }

    [Fact]
    public async Task ThePumpReadsNoFurtherAheadThanTheCapacity()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 100; i++) q.Enqueue(Record(i));
        using var cts = new CancellationTokenSource();
        QueueReader reader = q.OpenReader(0, OutOfRange.Throw); // the pump owns and disposes it
        ChannelReader<QueueRecord> channel = reader.AsChannelReader(capacity: 4, cts.Token);
        await WaitUntil(() => channel.Count == 4);
        await Task.Delay(200); // give a pump that ignored the bound the time to read on
        Assert.Equal(4, channel.Count);
        Assert.Equal(4, reader.NextSequence); // the queue itself was not read further
        Assert.True(channel.TryRead(out QueueRecord first));
        Assert.Equal(0, first.Sequence);
        await WaitUntil(() => reader.NextSequence == 5); // one taken, one more read
        await Task.Delay(200);
        Assert.Equal(5, reader.NextSequence);
        Assert.Equal(4, channel.Count);
        await Stop(cts, channel);
    }

    [Fact]
    public async Task CancellationCompletesTheChannelAsCanceledAfterTheBufferedItems()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 3; i++) q.Enqueue(Record(i));
        using var cts = new CancellationTokenSource();
        QueueReader reader = q.OpenReader(0, OutOfRange.Throw);
        ChannelReader<QueueRecord> channel = reader.AsChannelReader(capacity: 16, cts.Token);
        await WaitUntil(() => channel.Count == 3); // then the pump waits for more records
        cts.Cancel();
        var drained = new List<long>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (QueueRecord r in channel.ReadAllAsync()) drained.Add(r.Sequence);
        });
        Assert.Equal([0, 1, 2], drained);
        Assert.True(channel.Completion.IsCanceled);
        Assert.Throws<ObjectDisposedException>(() => reader.TryRead(out _)); // the pump disposed the reader it owned
    }

    [Fact]
    public async Task DisposingTheQueueCompletesTheChannel()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, Small());
        q.Enqueue("last"u8);
        ChannelReader<QueueRecord> channel = q.OpenReader(0, OutOfRange.Throw).AsChannelReader(capacity: 4);
        QueueRecord only = await channel.ReadAsync();
        Assert.Equal("last", Encoding.ASCII.GetString(only.Payload.Span));
        q.Dispose();
        await channel.Completion.WaitAsync(TimeSpan.FromSeconds(60)); // a hang guard, not a timing assertion
        Assert.True(channel.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ACorruptRecordFaultsTheChannelWithTheFileAndOffset()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 3; i++) q.Enqueue(Record(i));
        q.Flush();
        string segment = Path.Combine(dir.Path, "00000000000000000000.seg");
        int second = SegmentLayout.FirstRecordOffset + SegmentLayout.FrameLength(Record(0).Length);
        using (var f = File.OpenHandle(segment, FileMode.Open, FileAccess.ReadWrite))
            RandomAccess.Write(f, "X"u8, second + SegmentLayout.RecordHeaderSize); // the page cache is the mapping: the reader sees it
        ChannelReader<QueueRecord> channel = q.OpenReader(0, OutOfRange.Throw).AsChannelReader(capacity: 4);
        Assert.Equal(0, (await channel.ReadAsync()).Sequence);
        var e = await Assert.ThrowsAsync<QueueCorruptedException>(() => channel.Completion.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(segment, e.FilePath);
        Assert.Equal(second, e.Offset);
    }

    [Fact]
    public async Task ANamedConsumerCommitsWhatItProcessedNotWhatThePumpReadAhead()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 50; i++) q.Enqueue(Record(i));
        using var cts = new CancellationTokenSource();
        QueueReader reader = q.OpenReader("worker");
        ChannelReader<QueueRecord> channel = reader.AsChannelReader(capacity: 16, cts.Token);
        for (int i = 0; i < 10; i++)
        {
            QueueRecord r = await channel.ReadAsync();
            reader.CommitAt(r.Sequence + 1);
        }
        await WaitUntil(() => channel.Count == 16); // the pump is 16 records ahead of what was processed
        Assert.Equal(10, q.Consumers["worker"]);
        await Stop(cts, channel); // the pump disposes the reader, which releases the name
        using QueueReader again = q.OpenReader("worker");
        Assert.True(again.TryRead(out ReadOnlySpan<byte> next));
        Assert.Equal("r0010", Encoding.ASCII.GetString(next)); // resumes after the last processed record
    }

    [Fact]
    public void CommitAtRefusesAnAnonymousReaderAndAPositionPastTheEnd()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 5; i++) q.Enqueue(Record(i));
        using (QueueReader anonymous = q.OpenReader(0, OutOfRange.Throw))
            Assert.Throws<InvalidOperationException>(() => anonymous.CommitAt(1));
        using QueueReader named = q.OpenReader("n");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => named.CommitAt(6));
        Assert.Contains("from 0 to the end of the queue, 5; found 6", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => named.CommitAt(-1));
        named.CommitAt(5);
        Assert.Equal(5, q.Consumers["n"]);
    }

    /// <summary>Cancels the pump and drains the channel until it completed: by then the pump disposed its reader.</summary>
    private static async Task Stop(CancellationTokenSource cts, ChannelReader<QueueRecord> channel)
    {
        cts.Cancel();
        await WaitUntil(() =>
        {
            while (channel.TryRead(out _)) { }
            return channel.Completion.IsCompleted;
        });
        Assert.True(channel.Completion.IsCanceled);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a hang guard, not a timing assertion
        while (!condition())
        {
            safety.Token.ThrowIfCancellationRequested();
            await Task.Delay(5);
        }
    }
}
