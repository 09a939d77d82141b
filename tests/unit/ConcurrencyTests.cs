using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace MmapQueues.Tests;

public class ConcurrencyTests
{
    [Theory]
    [InlineData(FlushMode.Async, 4, 20_000)]
    [InlineData(FlushMode.Sync, 4, 500)]
    public async Task ConcurrentProducersAndAReaderSeeEverySequenceExactlyOnceInOrder(FlushMode mode, int producers, int perProducer)
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small(mode, 16 * 1024)); // small segments: many rolls under contention
        int total = producers * perProducer;
        var returned = new ConcurrentBag<long>();
        var reader = Task.Run(() =>
        {
            using var r = q.OpenReader();
            var seen = new List<(long Seq, int Producer, int Index)>(total);
            while (seen.Count < total)
            {
                long seq = r.NextSequence;
                if (!r.TryRead(out var p)) { Thread.Yield(); continue; }
                seen.Add((seq, BinaryPrimitives.ReadInt32LittleEndian(p), BinaryPrimitives.ReadInt32LittleEndian(p[4..])));
                Assert.Equal(8 + (seen[^1].Index % 13), p.Length);
            }
            return seen;
        });
        Parallel.For(0, producers, new ParallelOptions { MaxDegreeOfParallelism = producers }, producer =>
        {
            for (int i = 0; i < perProducer; i++)
            {
                var payload = new byte[8 + (i % 13)];
                BinaryPrimitives.WriteInt32LittleEndian(payload, producer);
                BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(4), i);
                returned.Add(q.Enqueue(payload));
            }
        });
        var seen = await reader.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(Enumerable.Range(0, total).Select(i => (long)i), seen.Select(s => s.Seq));
        Assert.Equal(Enumerable.Range(0, total).Select(i => (long)i), returned.OrderBy(x => x));
        // Each producer's records appear in the order it appended them, each exactly once.
        foreach (var g in seen.GroupBy(s => s.Producer))
            Assert.Equal(Enumerable.Range(0, perProducer), g.Select(s => s.Index));
        if (mode == FlushMode.Sync) Assert.Equal(total, q.DurableSequence);
    }

    [Fact]
    public async Task WaitToReadAsyncCompletesWhenAProducerPublishes()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        using var r = q.OpenReader();
        Assert.False(r.TryRead(out _));
        var wait = r.WaitToReadAsync().AsTask();
        await Task.Delay(50);
        Assert.False(wait.IsCompleted, "nothing was published yet");
        q.Enqueue(TestPayloads.For(0, 10));
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(r.TryRead(out var p));
        Assert.Equal(TestPayloads.For(0, 10), p.ToArray());
    }

    [Fact]
    public async Task WaitToReadAsyncHonoursCancellation()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, TestOptions.Small());
        using var r = q.OpenReader();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => r.WaitToReadAsync(cts.Token).AsTask());
    }
}
