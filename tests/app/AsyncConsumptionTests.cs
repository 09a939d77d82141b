using System.Text;

namespace MmapQueues.Tests.App;

public class AsyncConsumptionTests
{
    private static MmapQueueOptions Small() => new() { SegmentSizeBytes = 64 * 1024, FlushMode = FlushMode.Async, Preheat = false };

    [Fact]
    public async Task ReadAllAsyncYieldsCopiesInOrderIncludingRecordsAppendedWhileWaiting()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        for (int i = 0; i < 3; i++) q.Enqueue(Encoding.UTF8.GetBytes($"r{i}"));
        using var reader = q.OpenReader();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // a safety net for a hang, not a timing assertion
        var seen = new List<ReadOnlyMemory<byte>>();
        await foreach (ReadOnlyMemory<byte> item in reader.ReadAllAsync(cts.Token))
        {
            seen.Add(item);
            if (seen.Count == 3) _ = Task.Run(() => { for (int i = 3; i < 6; i++) q.Enqueue(Encoding.UTF8.GetBytes($"r{i}")); });
            if (seen.Count == 6) break;
        }
        Assert.Equal(["r0", "r1", "r2", "r3", "r4", "r5"], seen.Select(m => Encoding.UTF8.GetString(m.Span)));
        for (int i = 0; i < 200; i++) q.Enqueue(new byte[40]); // rolls; the copies must not change with the mapping
        Assert.Equal("r0", Encoding.UTF8.GetString(seen[0].Span));
    }

    [Fact]
    public async Task ReadAllAsyncStopsWithCancellation()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        using var reader = q.OpenReader();
        using var cts = new CancellationTokenSource();
        var consume = Task.Run(async () =>
        {
            await foreach (var _ in reader.ReadAllAsync(cts.Token)) { }
        });
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => consume);
    }

    [Fact]
    public async Task ReadAllAsyncEndsWhenTheQueueIsDisposed()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, Small());
        q.Enqueue("last"u8);
        using var reader = q.OpenReader();
        var items = new List<string>();
        var consume = Task.Run(async () =>
        {
            await foreach (var m in reader.ReadAllAsync()) items.Add(Encoding.UTF8.GetString(m.Span));
        });
        while (items.Count == 0) await Task.Yield();
        q.Dispose();
        await consume;
        Assert.Equal(["last"], items);
    }
}
