using MmapQueues.Format;
using MmapQueues.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace MmapQueues.Tests;

/// <summary>
/// The flusher alone, over one real segment whose records the test reserves and publishes by hand: the
/// durable-sequence contract (never ahead of what is published and synced; a flush to a target waits for
/// the producers that reserved below it).
/// </summary>
public sealed class FlusherTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly SegmentAllocator _allocator;
    private readonly Segment _segment;
    private readonly Flusher _flusher;

    public FlusherTests()
    {
        _allocator = new SegmentAllocator(_dir.Path, 64 * 1024, Storage.QueueFiles.DefaultFileMode, preheat: false, lockInMemory: false, NullLogger.Instance);
        _segment = _allocator.TakeAndActivate(0, Guid.NewGuid());
        var options = new MmapQueueOptions { FlushMode = FlushMode.Async };
        _flusher = new Flusher(_dir.Path, options, NullLogger.Instance, new SegmentList([_segment]),
            () => _segment.ReservedTail.Records, _segment, nextSequence: 0);
    }

    private (int Offset, long Sequence) Reserve()
    {
        Assert.True(_segment.TryReserve(SegmentLayout.FrameLength(8), out int offset, out long sequence));
        return (offset, sequence);
    }

    private void Publish((int Offset, long Sequence) r)
    {
        uint word = SegmentLayout.RecordWord(8);
        Frames.WriteCrc(_segment.Bytes, r.Offset, r.Sequence, word, 8);
        _segment.PublishWord(r.Offset, word);
    }

    [Fact]
    public void FlushToATargetMakesEveryPublishedRecordBelowItDurable()
    {
        for (int i = 0; i < 3; i++) Publish(Reserve());
        Assert.Equal(0, _flusher.DurableSequence);
        _flusher.Flush(3);
        Assert.Equal(3, _flusher.DurableSequence);
        Assert.Equal(SegmentLayout.FirstRecordOffset + 3 * SegmentLayout.FrameLength(8), _segment.FlushedOffset);
    }

    [Fact]
    public void DurableSequenceStopsBeforeAReservedRecordNotYetPublished()
    {
        Publish(Reserve());
        var pending = Reserve(); // a producer still copying
        Publish(Reserve());
        _flusher.FlushPublished();
        Assert.Equal(1, _flusher.DurableSequence); // not 3: record 1 is not published, so record 2 cannot be reported either
        Publish(pending);
        _flusher.FlushPublished();
        Assert.Equal(3, _flusher.DurableSequence);
    }

    [Fact]
    public async Task FlushToATargetWaitsForAProducerThatReservedBelowIt()
    {
        var pending = Reserve();
        Task flush = Task.Run(() => _flusher.Flush(1));
        await Task.WhenAny(flush, Task.Delay(200));
        Assert.False(flush.IsCompleted, "the flush returned before the record below its target was published");
        Assert.Equal(0, _flusher.DurableSequence);
        Publish(pending);
        await flush.WaitAsync(TimeSpan.FromSeconds(10)); // throws TimeoutException if the flush never finished
        Assert.Equal(1, _flusher.DurableSequence);
    }

    [Fact]
    public void WaitDurableReturnsOnlyOnceTheSequenceIsDurable()
    {
        var r = Reserve();
        Publish(r);
        _flusher.WaitDurable(r.Sequence);
        Assert.True(_flusher.DurableSequence > r.Sequence);
    }

    [Fact]
    public void AFlushAfterCloseThrowsObjectDisposed()
    {
        Publish(Reserve());
        _flusher.Close();
        Assert.Throws<ObjectDisposedException>(() => _flusher.Flush(1));
        Assert.Equal(0, _flusher.DurableSequence);
    }

    public void Dispose()
    {
        _segment.Release();
        _allocator.Dispose();
        _dir.Dispose();
    }
}
