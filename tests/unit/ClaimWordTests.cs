using System.Diagnostics.Metrics;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests;

/// <summary>A claim callback (<c>Enqueue&lt;TState&gt;</c>) held open on its own thread until released.</summary>
internal sealed class BlockedClaim : IDisposable
{
    private readonly ManualResetEventSlim _inside = new(), _release = new();
    private readonly Thread _thread;
    public long? Sequence { get; private set; }
    public Exception? Error { get; private set; }

    public BlockedClaim(MmapQueue q, int length)
    {
        _thread = new Thread(() =>
        {
            try
            {
                Sequence = q.Enqueue(length, this, static (span, self) =>
                {
                    self._inside.Set();
                    self._release.Wait();
                    span.Fill(0x5A);
                });
            }
            catch (Exception e) when (e is ObjectDisposedException or TimeoutException)
            {
                Error = e;
            }
        }) { IsBackground = true };
        _thread.Start();
        Assert.True(_inside.Wait(TimeSpan.FromSeconds(30)), "the claim callback never started");
    }

    /// <summary>Lets the callback finish and waits for its Enqueue to return.</summary>
    public void Release()
    {
        _release.Set();
        Assert.True(_thread.Join(TimeSpan.FromSeconds(30)), "the claim's Enqueue never returned");
    }

    public void Dispose()
    {
        _release.Set();
        _thread.Join(TimeSpan.FromSeconds(30));
    }
}

public class ClaimWordTests
{
    private static MmapQueueOptions Options(TimeSpan? claimTimeout = null, FlushMode mode = FlushMode.Async) =>
        TestOptions.Small(mode, change: o => o.ClaimTimeout = claimTimeout ?? TimeSpan.FromSeconds(30));

    [Fact]
    public void AClaimStoresItsWordAndClaimCrcBeforeTheCallbackRuns()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        using var claim = new BlockedClaim(q, 100);
        Segment seg = q.Segments[0];
        uint word = seg.ReadWord(SegmentLayout.FirstRecordOffset);
        Assert.Equal(FrameKind.Claimed, Frames.ClassifyWord(word, out int length));
        Assert.Equal(100, length);
        Assert.True(Frames.ClaimHolds(seg.Bytes, SegmentLayout.FirstRecordOffset, word, 0));
        claim.Release();
        Assert.Equal(FrameKind.Payload, Frames.ClassifyWord(seg.ReadWord(SegmentLayout.FirstRecordOffset), out _));
    }

    [Fact]
    public async Task AReaderWaitsAtAClaimAndReadsTheRecordAndTheOnesAfterItOncePublished()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        q.Enqueue(TestPayloads.For(0, 10));
        using var claim = new BlockedClaim(q, 64);
        q.Enqueue(TestPayloads.For(2, 10)); // published after the open claim
        using var r = q.OpenReader();
        Assert.True(r.TryRead(out var first));
        Assert.Equal(TestPayloads.For(0, 10), first.ToArray());
        Assert.False(r.TryRead(out _)); // at the claim: not yet, although record 2 is published behind it
        Assert.False(r.TryReadBatch(out _));
        Assert.Equal(1, r.NextSequence);
        ValueTask<bool> wait = r.WaitToReadAsync();
        await Task.Delay(50);
        Assert.False(wait.IsCompleted, "WaitToReadAsync saw a record at an open claim");

        claim.Release();
        Assert.True(await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(r.TryRead(out var claimed));
        Assert.True(claimed.IndexOfAnyExcept((byte)0x5A) < 0 && claimed.Length == 64);
        Assert.True(r.TryRead(out var third));
        Assert.Equal(TestPayloads.For(2, 10), third.ToArray());
    }

    [Fact]
    public void FlushGivesUpAtABlockedCallbackAfterClaimTimeoutNamingTheClaim()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(TimeSpan.FromMilliseconds(200)));
        q.Enqueue(TestPayloads.For(0, 10));
        using var claim = new BlockedClaim(q, 32);
        q.Enqueue(TestPayloads.For(2, 10));
        var e = Assert.Throws<TimeoutException>(() => q.Flush());
        int offset = SegmentLayout.FirstRecordOffset + SegmentLayout.FrameLength(10);
        Assert.Contains("claim of sequence 1", e.Message);
        Assert.Contains(q.Segments[0].Path, e.Message);
        Assert.Contains($"at offset {offset}", e.Message);
        Assert.Matches(@"open for \d+ ms", e.Message);
        Assert.Equal(1, q.DurableSequence); // what lay before the claim was flushed
        claim.Release();
        q.Flush(); // published now: the flush goes through
        Assert.Equal(3, q.DurableSequence);
    }

    [Fact]
    public void ASyncModeAppendBehindABlockedCallbackThrowsTimeoutButIsAppended()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(TimeSpan.FromMilliseconds(200), FlushMode.Sync));
        using var claim = new BlockedClaim(q, 32);
        var e = Assert.Throws<TimeoutException>(() => q.Enqueue(TestPayloads.For(1, 10)));
        Assert.Contains("claim of sequence 0", e.Message);
        Assert.Equal(2, q.NextSequence);
        claim.Release();
        Assert.Equal(0, claim.Sequence);
        q.Flush();
        Assert.Equal(2, q.DurableSequence);
    }

    [Fact]
    public async Task SyncProducersQueuedBehindOneBlockedCallbackAllGiveUpOnceTheClaimIsClaimTimeoutOld()
    {
        // Each waiter leads a flush walk in turn; the claim's age is kept across walks, so the last of them does
        // not wait one ClaimTimeout per waiter before it (5 producers: about 5 x 300 ms before, about 300 ms now).
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(TimeSpan.FromMilliseconds(300), FlushMode.Sync));
        using var claim = new BlockedClaim(q, 32);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var producers = Enumerable.Range(1, 5).Select(i => Task.Run(() =>
        {
            Assert.Throws<TimeoutException>(() => q.Enqueue(TestPayloads.For(i, 10)));
            return started.Elapsed;
        })).ToArray();
        TimeSpan[] gaveUp = await Task.WhenAll(producers);
        Assert.True(gaveUp.Max() < TimeSpan.FromMilliseconds(1200),
            $"the producers gave up after {string.Join(", ", gaveUp.Select(t => $"{t.TotalMilliseconds:F0} ms"))}: one ClaimTimeout each, in turn");
        claim.Release();
    }

    [Fact]
    public void DisposeWithACallbackThatNeverReturnsLogsAndKeepsTheMappingAndTheWritersLock()
    {
        using var dir = new TempDir();
        using var logs = new CapturingLoggerFactory();
        var q = new MmapQueue(dir.Path, Options(TimeSpan.FromMilliseconds(200)), logs);
        q.Enqueue(TestPayloads.For(0, 10));
        using var claim = new BlockedClaim(q, 48);
        for (int i = 2; i < 5; i++) q.Enqueue(TestPayloads.For(i, 10));
        Segment seg = q.Segments[0];
        q.Dispose(); // returns after about ClaimTimeout, without unmapping the segment the callback writes into
        Assert.True(seg.IsMapped, "Dispose unmapped a segment an open claim's callback may still write into");
        LogEntry entry = Assert.Single(logs.WithId(1023));
        Assert.Contains("claim of sequence 1", entry.Message);

        // The writer's lock stays held: a new open would turn the claim into an aborted record while the callback
        // still writes into the file. (A new process after this one exits reads it as aborted: ClaimRecoveryTests
        // and the crash suite's four-producer kills.)
        var e = Assert.Throws<IOException>(() => new MmapQueue(dir.Path, Options()));
        Assert.Contains("already open for writing", e.Message);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        claim.Release(); // the callback writes into the mapping Dispose left alive: no crash
        Assert.Equal(1, claim.Sequence);
    }

    [Fact]
    public void IntervalFlushesLogABlockedCallbackAndDisposeStillEndsWithoutThrowing()
    {
        using var dir = new TempDir();
        using var logs = new CapturingLoggerFactory();
        var q = new MmapQueue(dir.Path, TestOptions.Small(FlushMode.Interval, change: o =>
        {
            o.ClaimTimeout = TimeSpan.FromMilliseconds(300);
            o.FlushInterval = TimeSpan.FromMilliseconds(10);
        }), logs);
        using var claim = new BlockedClaim(q, 16);
        q.Enqueue(TestPayloads.For(1, 10));
        logs.WaitFor(1021); // a tick gave up at the claim: logged, and the timer goes on
        Assert.IsType<TimeoutException>(logs.WithId(1021).First().Exception);
        var disposing = System.Diagnostics.Stopwatch.StartNew();
        q.Dispose(); // a tick may be waiting at the claim as Dispose starts: one deadline ends every wait
        Assert.True(disposing.Elapsed < TimeSpan.FromSeconds(20), $"Dispose took {disposing.Elapsed} with ClaimTimeout 300 ms");
        Assert.Single(logs.WithId(1023));
    }

    [Fact]
    public void TheOldestClaimGaugeReportsABlockedCallbackAndZeroOnceItReturns()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options());
        using var listener = new MeterListener();
        var values = new List<double>();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == "MmapQueue" && i.Name == "mmapq.claim.oldest_age") l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) =>
        {
            foreach (var t in tags)
                if (t.Key == "messaging.destination.name" && Equals(t.Value, q.Path)) lock (values) values.Add(v);
        });
        listener.Start();
        double Observe()
        {
            lock (values) values.Clear();
            listener.RecordObservableInstruments();
            lock (values) return Assert.Single(values);
        }

        q.Enqueue(TestPayloads.For(0, 10));
        Assert.Equal(0, Observe());
        using var claim = new BlockedClaim(q, 16);
        Thread.Sleep(20);
        Assert.True(Observe() >= 0.010, "the gauge did not see the open claim's age");
        claim.Release();
        Assert.Equal(0, Observe());
    }

    [Fact]
    public void ClaimTimeoutOutsideItsRangeIsRefusedWithTheValue()
    {
        var o = new MmapQueueOptions { ClaimTimeout = TimeSpan.Zero };
        var e = Assert.Throws<ArgumentException>(o.Validate);
        Assert.Contains("ClaimTimeout must be from 1 ms to 1 hour; found 00:00:00", e.Message);
    }
}
