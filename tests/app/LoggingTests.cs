using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using System.Net.Sockets;
using MmapQueues.Format;
using MmapQueues.Shipping;
using MmapQueues.Tests.Shipping;

namespace MmapQueues.Tests.App;

public class LoggingTests
{
    [Fact]
    public void OpenAndRollLogTheirEventIds()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        using (var q = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = 8192, Preheat = false }, logs))
            for (int i = 0; i < 200; i++) q.Enqueue(new byte[100]);
        LogEntry opened = Assert.Single(logs.WithId(1001));
        Assert.Equal(LogLevel.Information, opened.Level);
        Assert.Contains($"Opened queue {dir.Path}", opened.Message);
        Assert.NotEmpty(logs.WithId(1010));
        Assert.All(logs.WithId(1010), e => Assert.Equal(LogLevel.Debug, e.Level));
    }

    [Fact]
    public void TornTailIsLoggedAsEvent1002WithFileOffsetAndBytes()
    {
        using var dir = new TempDir();
        long end;
        using (var q = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = 8192, FlushMode = FlushMode.Async, Preheat = false }))
        {
            for (int i = 0; i < 3; i++) q.Enqueue(new byte[16]);
            end = SegmentLayout.FirstRecordOffset + 3 * SegmentLayout.FrameLength(16);
        }
        string segment = Path.Combine(dir.Path, "00000000000000000000.seg");
        using (var fs = new FileStream(segment, FileMode.Open, FileAccess.Write))
        {
            fs.Position = end + 8; // a zero commit word followed by bytes: what a torn write leaves
            fs.Write([1, 2, 3, 4, 5]);
        }
        var logs = new CapturingLoggerFactory();
        using (var q = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = 8192, Preheat = false }, logs))
            Assert.Equal(3, q.NextSequence);
        LogEntry torn = Assert.Single(logs.WithId(1002));
        Assert.Equal(LogLevel.Warning, torn.Level);
        Assert.Contains($"Torn tail in {segment}: truncated 13 bytes from offset {end}", torn.Message);
    }

    [Fact]
    public async Task AShippingSessionLogsItsPeerConnectingAndDisconnectingWithTheSequenceReached()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        string source = Path.Combine(dir.Path, "source");
        using var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 }, logs);
        for (int i = 0; i < 10; i++) q.Enqueue(new byte[100]);
        string peer;
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            peer = s.RemoteEndPoint!.ToString()!;
            Task<long> received = Loopback.Receive(Path.Combine(dir.Path, "replica"), r);
            Assert.Equal(10, await Task.Run(() => q.ExportTo(s)));
            Assert.Equal(10, await received.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        LogEntry connected = Assert.Single(logs.WithId(1040));
        Assert.Equal(LogLevel.Information, connected.Level);
        Assert.Equal($"Replica {peer} connected to {source}; shipping from sequence 0", connected.Message);
        LogEntry disconnected = Assert.Single(logs.WithId(1041));
        Assert.Equal($"Replica {peer} disconnected from {source} at sequence 10: the session ended (END acknowledged)", disconnected.Message);
    }

    [Fact]
    public async Task ACancelledFollowSessionLogsItsPeerDisconnectingAsCancelled()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        string source = Path.Combine(dir.Path, "source");
        using var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10 }, logs);
        for (int i = 0; i < 5; i++) q.Enqueue(new byte[100]);
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            using var cts = new CancellationTokenSource();
            var caughtUp = new TaskCompletionSource();
            var progress = new SyncProgress(p => { if (p.DurableSequence == 5) caughtUp.TrySetResult(); });
            Task<long> export = q.ExportToAsync(s, 0, new ExportOptions { Follow = true, Progress = progress }, cts.Token);
            Task<long> received = Loopback.Receive(Path.Combine(dir.Path, "replica"), r);
            await caughtUp.Task.WaitAsync(TimeSpan.FromSeconds(30));
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => export.WaitAsync(TimeSpan.FromSeconds(30)));
            await Assert.ThrowsAnyAsync<IOException>(() => received.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        Assert.Single(logs.WithId(1040));
        Assert.EndsWith($"disconnected from {source} at sequence 5: the session was cancelled", Assert.Single(logs.WithId(1041)).Message);
    }

    [Fact]
    public async Task AReceiverLogsWhyItRefusedASenderWhileThePeerGetsOnlyACode()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        using var q = new MmapQueue(Path.Combine(dir.Path, "source"), new MmapQueueOptions { SegmentSizeBytes = 64 << 10 });
        q.Enqueue(new byte[10]);
        string replica = Path.Combine(dir.Path, "replica");
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            var secret = ShippingAuthentication.SharedSecret("sixteen bytes or more of secret"u8);
            Task<long> received = new QueueReceiver(replica, new ReceiverOptions { Authentication = secret, LoggerFactory = logs }).ReceiveAsync(r);
            var e = await Assert.ThrowsAsync<ShippingProtocolException>(() => q.ExportToAsync(s)); // plain: no secret
            Assert.Equal("auth-mode", e.Code);
            Assert.DoesNotContain("SharedSecret", e.Message);
            await Assert.ThrowsAsync<ShippingProtocolException>(() => received.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        LogEntry refused = Assert.Single(logs.WithId(1044));
        Assert.Equal(LogLevel.Warning, refused.Level);
        Assert.Contains($"into replica {replica} failed (ShippingProtocolException)", refused.Message);
        Assert.Contains("expected authentication mode SharedSecret, found None", refused.Message);
        Assert.Empty(logs.WithId(1042)); // no session started
    }

    [Fact]
    public void EveryEventIdIsUniqueInItsRangeAndListedInLoggingDoc() =>
        LoggingDoc.AssertEventIdsUniqueInRangeAndListed(typeof(MmapQueue).Assembly.GetType("MmapQueues.Log")!, 1001, 1059);
}
