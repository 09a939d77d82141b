using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Shipping;

/// <summary>
/// The attacks a hostile peer made on shipping, each as a test: a lying receiver cannot make the source
/// delete or report records it never sent; a hostile sender cannot amplify disk use, overflow sequences,
/// or hold the replica with an idle connection; the receiver survives bad peers.
/// </summary>
public sealed class HostilePeerTests : IDisposable
{
    private const long SegmentSize = 64 << 10;
    private readonly TempDir _dir = new();
    private readonly string _source, _replica;

    public HostilePeerTests()
    {
        _source = _dir.Sub("source");
        _replica = _dir.Sub("replica");
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>The source queue, opened, with <paramref name="records"/> records of about 1 KB appended.</summary>
    private MmapQueue SourceWith(int records)
    {
        var q = new MmapQueue(_source, new MmapQueueOptions { SegmentSizeBytes = SegmentSize });
        Append(q, records);
        return q;
    }

    private static void Append(MmapQueue q, int count)
    {
        for (int i = 0; i < count; i++) q.Enqueue(new byte[1000 + i % 50]);
    }

    /// <summary>Where record <paramref name="sequence"/> sits in the source's files: its segment's base and its offset.</summary>
    private (long Base, int Offset) PositionOf(long sequence)
    {
        foreach ((long b, string path) in QueueDirectory.ListSegments(_source))
        {
            byte[] bytes = File.ReadAllBytes(path);
            long seq = b;
            for (int off = SegmentLayout.FirstRecordOffset; off + SegmentLayout.RecordHeaderSize <= bytes.Length;)
            {
                if (seq == sequence) return (b, off);
                uint word = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(off));
                if (word == 0 || word == SegmentLayout.EndOfSegmentWord) break;
                off += SegmentLayout.FrameLength((int)(word & SegmentLayout.LengthMask));
                seq++;
                if (seq == sequence && off + SegmentLayout.RecordHeaderSize <= bytes.Length && BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(off)) != SegmentLayout.EndOfSegmentWord)
                    return (b, off);
            }
        }
        throw new ArgumentOutOfRangeException(nameof(sequence));
    }

    /// <summary>A fake receiver: reads HELLO, answers RESUME at <paramref name="next"/> (a real record boundary of the source), then ACKs <paramref name="ack"/>.</summary>
    private async Task<(Exception? ExportError, string Answer)> LyingReceiver(MmapQueue q, long next, long ack, string? consumer)
    {
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (var liar = new RawPeer(r))
        {
            Task<long> export = q.ExportToAsync(s, q.FirstSequence, new ExportOptions { ConsumerName = consumer });
            byte[] hello = liar.Read(WireProtocol.HelloSize);
            (long b, int off) = PositionOf(next);
            liar.Send(RawPeer.Resume(next, RawPeer.QueueIdOf(_source), b, off));
            try
            {
                liar.Send(RawPeer.Header(WireProtocol.Kind.Ack, 0, ack, 0));
            }
            catch (SocketException)
            {
                // the exporter refused the RESUME and closed already: the lie changed nothing
            }
            Exception? e = await Record.ExceptionAsync(() => export.WaitAsync(TimeSpan.FromSeconds(30)));
            s.Shutdown(SocketShutdown.Both);
            return (e, liar.ReadToEnd());
        }
    }

    [Fact]
    public async Task ALyingResumeAndAckCannotMakeTheSourceDeleteRecordsItNeverSent()
    {
        using var q = SourceWith(200);
        (Exception? e, string answer) = await LyingReceiver(q, next: 190, ack: 200, consumer: "replica");
        Assert.Equal("resume", Assert.IsType<ShippingProtocolException>(e).Code);
        Assert.Contains("consumer 'replica' was only ever sent records below 0", e!.Message);
        Assert.Contains("resume: the replica's position is not one this source shipped", answer);
        Assert.DoesNotContain("190", answer); // no positions to learn from
        Assert.Equal(0, q.Consumers["replica"]);
        Assert.Equal(0, q.FirstSequence);
    }

    [Fact]
    public async Task AResumeClaimingTheEndIsNotReportedDurableButOneUpToWhatWasShippedIs()
    {
        // A genuine session ships 100 records under the name: the source remembers durably it sent them.
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        using (MmapQueue first = SourceWith(100))
        {
            Task<long> received = Loopback.Receive(_replica, r);
            Assert.Equal(100, await first.ExportToAsync(s, 0, new ExportOptions { ConsumerName = "replica" }));
            Assert.Equal(100, await received);
        }
        using var q = SourceWith(100); // reopened: the mark comes from the disk
        Assert.Equal(200, q.NextSequence);
        (Exception? e, _) = await LyingReceiver(q, next: 200, ack: 200, consumer: "replica");
        Assert.Equal("resume", Assert.IsType<ShippingProtocolException>(e).Code);
        Assert.Equal(100, q.Consumers["replica"]);

        // Up to the mark, the replica's word is accepted (those records were sent, and acknowledged, before).
        (s, r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r);
            Assert.Equal(200, await q.ExportToAsync(s, q.FirstSequence, new ExportOptions { ConsumerName = "replica" }));
            Assert.Equal(200, await received);
        }
        Assert.Equal(200, q.Consumers["replica"]);
        long firstHeld = q.FirstSequence;
        q.Dispose();
        Loopback.AssertSameRecords(_source, _replica, firstHeld);
    }

    [Fact]
    public async Task AnAckBeyondWhatWasSentIsRefusedAndCommitsNothing()
    {
        using var q = SourceWith(100);
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (var liar = new RawPeer(r))
        {
            Task<long> export = q.ExportToAsync(s, 0, new ExportOptions { ConsumerName = "replica" });
            liar.Read(WireProtocol.HelloSize);
            liar.Send(RawPeer.Resume(0, RawPeer.QueueIdOf(_source), 0, SegmentLayout.FirstRecordOffset));
            liar.Read(WireProtocol.HeaderSize); // the first CHUNK's header: it is sending
            liar.Send(RawPeer.Header(WireProtocol.Kind.Ack, 0, 5000, 0));
            var e = Assert.IsType<ShippingProtocolException>(await Record.ExceptionAsync(() => export.WaitAsync(TimeSpan.FromSeconds(30))));
            Assert.Contains("ACK", e.Message);
        }
        Assert.Equal(0, q.Consumers["replica"]);
        Assert.Equal(0, q.FirstSequence);
    }

    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(WireProtocol.MaxSequence + 1)]
    [InlineData(-1)]
    public async Task AHelloStartOutOfRangeIsRefusedAndCreatesNothing(long start)
    {
        (Socket s, Socket r) = Loopback.Pair();
        using var sender = new RawPeer(s);
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r);
            sender.Send(RawPeer.Hello(SegmentSize, Guid.NewGuid(), start));
            (Exception? e, string answer) = await sender.OutcomeOf(received, r);
            Assert.Contains("a start sequence from 0 to 4611686018427387904", Assert.IsType<ShippingProtocolException>(e).Message);
            Assert.Contains("protocol:", answer);
        }
        Assert.False(File.Exists(Path.Combine(_replica, "queue.meta")));
    }

    [Fact]
    public async Task ASegmentSizeAboveTheReplicasCapIsRefusedAndCreatesNothing()
    {
        (Socket s, Socket r) = Loopback.Pair();
        using var sender = new RawPeer(s);
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r); // default cap: 64 MiB
            sender.Send(RawPeer.Hello(1L << 30, Guid.NewGuid(), 0));
            (Exception? e, string answer) = await sender.OutcomeOf(received, r);
            Assert.Equal("limit", Assert.IsType<ShippingProtocolException>(e).Code);
            Assert.Contains("limit:", answer);
        }
        Assert.False(Directory.Exists(_replica) && Directory.EnumerateFileSystemEntries(_replica).Any(), "nothing may be created for a refused sender");
    }

    /// <summary>
    /// One session from a hand-driven sender into the replica: HELLO of queue <paramref name="id"/>, then the
    /// messages <paramref name="after"/> makes from the RESUME (until the receiver closes); the session's outcome.
    /// </summary>
    private async Task<(Exception? Error, string Answer)> RawSession(Guid id, Func<WireProtocol.Resume, IEnumerable<byte[]>> after)
    {
        (Socket s, Socket r) = Loopback.Pair();
        using var sender = new RawPeer(s);
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r);
            sender.Send(RawPeer.Hello(SegmentSize, id, 0));
            WireProtocol.Resume resume = WireProtocol.ReadResume(sender.Read(WireProtocol.ResumeSize), SegmentSize);
            try
            {
                foreach (byte[] message in after(resume)) sender.Send(message);
            }
            catch (SocketException)
            {
                // refused and closed already: the outcome says why
            }
            return await sender.OutcomeOf(received, r);
        }
    }

    [Fact]
    public async Task EmptyRecordsWithEndMarkersCannotRollSegmentAfterSegment()
    {
        // Each segment: one empty record, then an end marker (which would roll a new preallocated segment).
        (Exception? e, string answer) = await RawSession(Guid.NewGuid(), _ =>
            Enumerable.Range(0, 50).Select(seq => RawPeer.Chunk(seq, SegmentLayout.FirstRecordOffset, [.. RawPeer.Record(seq, []), .. RawPeer.EndMarker(seq + 1)])));
        Assert.Contains("a segment end only where the next record could not have fit", Assert.IsType<ShippingProtocolException>(e).Message);
        Assert.Contains("record:", answer);
        Assert.InRange(Directory.GetFiles(_replica, "*.seg").Length, 1, 2); // one roll got through (checked one segment late), not 50
    }

    [Fact]
    public async Task EndMarkersSentOneSessionEachCannotRollSegmentAfterSegment()
    {
        Guid id = Guid.NewGuid();
        int refused = 0;
        for (int i = 0; i < 20; i++)
        {
            // Each session: one empty record, an end marker, END; the next session starts in the segment it rolled.
            (Exception? e, _) = await RawSession(id, resume =>
            [
                RawPeer.Chunk(resume.SegmentBase, resume.Offset, [.. RawPeer.Record(resume.NextSequence, []), .. RawPeer.EndMarker(resume.NextSequence + 1)]),
                RawPeer.Header(WireProtocol.Kind.End, 0, resume.NextSequence + 1, 0),
            ]);
            if (e is ShippingProtocolException { Code: "record" }) refused++;
        }
        Assert.True(refused >= 18, $"only {refused} of 20 sessions were refused");
        Assert.InRange(Directory.GetFiles(_replica, "*.seg").Length, 1, 2); // one roll got through (the replica's first segment), not 20
    }

    [Fact]
    public async Task AClaimWordFromTheNetworkIsRefusedWithExpectedAndFound()
    {
        // A source ships only published frames: a claim in progress (word CLAIMED|5 with its claim CRC) is hostile.
        var claim = new byte[SegmentLayout.FrameLength(5)];
        Frames.StoreClaim(claim, 0, 0, 5);
        (Exception? e, string answer) = await RawSession(Guid.NewGuid(), _ => [RawPeer.Chunk(0, SegmentLayout.FirstRecordOffset, claim)]);
        var refused = Assert.IsType<ShippingProtocolException>(e);
        Assert.Equal("record", refused.Code);
        Assert.Contains("expected a published commit word", refused.Message);
        Assert.Contains("found a claim in progress (commit word 0x40000005, length 5)", refused.Message);
        Assert.Contains("record:", answer);
    }

    [Fact]
    public async Task AnEndMarkerInAnEmptySegmentIsRefusedAsABadRecord()
    {
        // A source never seals a segment holding no record: the next one would have the same name.
        (Exception? e, string answer) = await RawSession(Guid.NewGuid(), _ => [RawPeer.Chunk(0, SegmentLayout.FirstRecordOffset, RawPeer.EndMarker(0))]);
        Assert.Equal("record", Assert.IsType<ShippingProtocolException>(e).Code);
        Assert.Contains("record:", answer);
        Assert.Single(Directory.GetFiles(_replica, "*.seg"));
        Assert.Empty(Directory.GetFiles(_replica, "*.tmp"));
    }

    [Fact]
    public async Task AReplicaAtItsSizeCapRefusesTheSenderInsteadOfGrowing()
    {
        using var q = SourceWith(400); // about 400 KB: more than 6 segments
        const long cap = 4 * SegmentSize;
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            var options = new ReceiverOptions { QueueOptions = new MmapQueueOptions { MaxQueueSizeBytes = cap } };
            Task<long> received = Loopback.Receive(_replica, r, options);
            Exception? se = await Record.ExceptionAsync(() => q.ExportToAsync(s).WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal("limit", Assert.IsType<ShippingProtocolException>(se).Code);
            Assert.IsType<QueueFullException>(await Record.ExceptionAsync(() => received.WaitAsync(TimeSpan.FromSeconds(30))));
        }
        long bytes = Directory.GetFiles(_replica, "*.seg*").Sum(f => new FileInfo(f).Length);
        Assert.InRange(bytes, 1, cap + SegmentSize); // the cap, plus the preheated spare
    }

    [Fact]
    public async Task AnIdleConnectionDoesNotDelayAGenuineExportAndASecondSessionIsRefusedAsBusy()
    {
        using var q = SourceWith(50);
        using Socket listener = Loopback.Listener();
        var ended = new List<ReceivedSession>();
        using var stop = new CancellationTokenSource();
        var options = new ReceiverOptions { HandshakeTimeout = TimeSpan.FromSeconds(60), IdleTimeout = TimeSpan.FromSeconds(2) };
        Task serve = new QueueReceiver(_replica, options).ServeAsync(listener, e => { lock (ended) ended.Add(e); }, cancellationToken: stop.Token);

        // A connection that never says anything: it holds only itself.
        using var idle = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        idle.Connect(listener.LocalEndPoint!);
        // A sender that says HELLO, then nothing: it holds the replica until the idle timeout.
        using var stuck = new RawPeer(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        stuck.Socket.Connect(listener.LocalEndPoint!);
        stuck.Send(RawPeer.Hello(SegmentSize, RawPeer.QueueIdOf(_source), 0));
        stuck.Read(WireProtocol.ResumeSize);

        using (var busy = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            busy.Connect(listener.LocalEndPoint!);
            var e = Assert.IsType<ShippingProtocolException>(await Record.ExceptionAsync(() => q.ExportToAsync(busy).WaitAsync(TimeSpan.FromSeconds(10))));
            Assert.Equal("busy", e.Code); // refused at once, not queued behind the stuck one
        }

        // The stuck sender's idle timeout frees the replica (the silent connection is still open).
        for (var wait = System.Diagnostics.Stopwatch.StartNew(); ; await Task.Delay(50))
        {
            lock (ended)
                if (ended.Any(x => x.Error is TimeoutException)) break;
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(30), "the stuck sender was never timed out");
        }
        using (var genuine = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            genuine.Connect(listener.LocalEndPoint!);
            Assert.Equal(50, await q.ExportToAsync(genuine).WaitAsync(TimeSpan.FromSeconds(20)));
        }
        stop.Cancel();
        idle.Shutdown(SocketShutdown.Both);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => serve.WaitAsync(TimeSpan.FromSeconds(30)));
        lock (ended) Assert.Contains(ended, x => x.NextSequence == 50);
    }

    [Fact]
    public async Task SilentConnectionsBeyondTheCapWaitInTheBacklogInsteadOfTakingMoreDescriptors()
    {
        using var q = SourceWith(20);
        using Socket listener = Loopback.Listener();
        using var stop = new CancellationTokenSource();
        var receiver = new QueueReceiver(_replica, new ReceiverOptions { HandshakeTimeout = TimeSpan.FromSeconds(3) }) { MaxConnections = 3 };
        Task serve = receiver.ServeAsync(listener, cancellationToken: stop.Token);
        var silent = new List<Socket>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                silent.Add(c);
                c.Connect(listener.LocalEndPoint!);
            }
            // The cap is taken: the genuine export waits in the backlog until the silent ones' handshake timeout.
            var watch = System.Diagnostics.Stopwatch.StartNew();
            using (var genuine = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                genuine.Connect(listener.LocalEndPoint!);
                Assert.Equal(20, await q.ExportToAsync(genuine).WaitAsync(TimeSpan.FromSeconds(30)));
            }
            Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2), $"served after {watch.Elapsed}: the receiver accepted past its cap of 3 connections");
        }
        finally
        {
            foreach (Socket c in silent) c.Dispose();
            stop.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => serve.WaitAsync(TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public async Task AFollowingSessionStaysUpThroughSilenceLongerThanTheReceiversIdleTimeout()
    {
        using var q = SourceWith(10);
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            using var cts = new CancellationTokenSource();
            var durable = 0L;
            var options = new ExportOptions { Follow = true, IdleTimeout = TimeSpan.FromSeconds(2), Progress = new SyncProgress(p => Interlocked.Exchange(ref durable, p.DurableSequence)) };
            Task<long> export = q.ExportToAsync(s, 0, options, cts.Token);
            // The receiver's idle timeout is 6 heartbeat periods, so a loaded machine that delays one or two does
            // not end the session; the silence is longer than that timeout, so only heartbeats can keep it up.
            Task<long> received = Loopback.Receive(_replica, r, new ReceiverOptions { IdleTimeout = TimeSpan.FromSeconds(3) });
            await Task.Delay(TimeSpan.FromSeconds(5)); // silence: only the exporter's heartbeats (every 0.5 s) keep the receiver waiting
            Assert.False(received.IsCompleted, "the receiver gave up on a following sender that sent heartbeats");
            Append(q, 5);
            for (var wait = System.Diagnostics.Stopwatch.StartNew(); Interlocked.Read(ref durable) < 15; await Task.Delay(20))
                Assert.True(wait.Elapsed < TimeSpan.FromSeconds(30), "records appended after the silence never became durable on the replica");
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => export.WaitAsync(TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public async Task TheReceiverSurvivesAGarbagePeerAndServesTheNextOne()
    {
        using var q = SourceWith(30);
        using Socket listener = Loopback.Listener();
        using var stop = new CancellationTokenSource();
        Task serve = new QueueReceiver(_replica).ServeAsync(listener, cancellationToken: stop.Token);
        using (var garbage = new RawPeer(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)))
        {
            garbage.Socket.Connect(listener.LocalEndPoint!);
            garbage.Send("\u001b[2J\u001b]0;owned\u0007 GET / HTTP/1.1\r\nHost: x\r\n\r\n and some more bytes to fill a prefix"u8);
            Assert.Contains("protocol:", garbage.ReadToEnd());
        }
        using (var genuine = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            genuine.Connect(listener.LocalEndPoint!);
            Assert.Equal(30, await q.ExportToAsync(genuine).WaitAsync(TimeSpan.FromSeconds(20)));
        }
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => serve.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task ASilentReceiverTimesTheExporterOutInsteadOfHangingIt()
    {
        using var q = SourceWith(10);
        var options = new ExportOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(500) };
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
            Assert.IsType<TimeoutException>(await Record.ExceptionAsync(() => new QueueExporter(q, options).ExportAsync(s).WaitAsync(TimeSpan.FromSeconds(30))));
        (s, r) = Loopback.Pair();
        using (s)
        using (r)
            Assert.IsType<TimeoutException>(Record.Exception(() => new QueueExporter(q, options).Export(s))); // the blocking path, too
    }

    [Fact]
    public async Task ASenderThatNeverReadsItsAcksCannotHoldTheReplica()
    {
        using var q = SourceWith(10);
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        using (var hostile = new RawPeer(s))
        {
            // Small buffers both ways, so that a few hundred unread ACKs fill them.
            s.ReceiveBufferSize = 4096;
            r.SendBufferSize = 4096;
            Task<long> received = Loopback.Receive(_replica, r, new ReceiverOptions { IdleTimeout = TimeSpan.FromSeconds(2) });
            hostile.Send(RawPeer.Hello(SegmentSize, RawPeer.QueueIdOf(_source), 0));
            hostile.Read(WireProtocol.ResumeSize);
            // Every SYNC asks for an ACK; this sender never reads one.
            byte[] sync = RawPeer.Header(WireProtocol.Kind.Sync, 0, 0, 0);
            Task flood = Task.Run(() =>
            {
                try
                {
                    for (int i = 0; i < 1_000_000 && !received.IsCompleted; i++) hostile.Send(sync);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // the receiver gave up on this sender: what the test waits for
                }
            });
            await Task.WhenAny(received, Task.Delay(TimeSpan.FromSeconds(30)));
            Assert.True(received.IsCompleted, "the receiver still waits to write an ACK the sender never reads");
            Assert.IsType<TimeoutException>(await Record.ExceptionAsync(() => received)); // its write timed out
            s.Shutdown(SocketShutdown.Both);
            await flood.WaitAsync(TimeSpan.FromSeconds(30));
        }

        // The replica is free again: a genuine export goes through.
        (s, r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r);
            Assert.Equal(10, await q.ExportToAsync(s).WaitAsync(TimeSpan.FromSeconds(20)));
            Assert.Equal(10, await received.WaitAsync(TimeSpan.FromSeconds(20)));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AReceiverThatStopsReadingTimesTheExporterOutInsteadOfHangingIt(bool blocking)
    {
        using var q = SourceWith(400); // about 400 KB: far more than the shrunken socket buffers hold
        var options = new ExportOptions { IdleTimeout = TimeSpan.FromSeconds(2) };
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (var stalled = new RawPeer(r))
        {
            s.SendBufferSize = 4096;
            r.ReceiveBufferSize = 4096;
            var exporter = new QueueExporter(q, options);
            Task<long> export = blocking ? Task.Factory.StartNew(() => exporter.Export(s), TaskCreationOptions.LongRunning) : exporter.ExportAsync(s);
            stalled.Read(WireProtocol.HelloSize);
            stalled.Send(RawPeer.Resume(0, RawPeer.QueueIdOf(_source), 0, SegmentLayout.FirstRecordOffset));
            // ... and reads nothing more: the exporter's sends stall on a shut window, which keepalive never notices.
            await Task.WhenAny(export, Task.Delay(TimeSpan.FromSeconds(40)));
            Assert.True(export.IsCompleted, "the exporter still waits to send to a receiver that stopped reading");
            Exception? e = await Record.ExceptionAsync(() => export);
            Assert.True(e is IOException or TimeoutException, $"expected a broken connection or a timeout, found {e}");
        }
    }

    [Fact]
    public async Task AReceiverDrippingItsResumeCannotStretchTheBlockingExportersHandshake()
    {
        using var q = SourceWith(10);
        var options = new ExportOptions { HandshakeTimeout = TimeSpan.FromSeconds(1) };
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (var dripper = new RawPeer(r))
        {
            Task<long> export = Task.Factory.StartNew(() => new QueueExporter(q, options).Export(s), TaskCreationOptions.LongRunning);
            dripper.Read(WireProtocol.HelloSize);
            byte[] resume = RawPeer.Resume(0, RawPeer.QueueIdOf(_source), 0, SegmentLayout.FirstRecordOffset);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                // One byte every 300 ms: each read is quick, the whole RESUME takes 17 s.
                for (int i = 0; i < resume.Length && !export.IsCompleted; i++)
                {
                    dripper.Send(resume.AsSpan(i, 1));
                    await Task.Delay(300);
                }
            }
            catch (SocketException)
            {
                // the exporter gave up and closed
            }
            Exception? e = await Record.ExceptionAsync(() => export.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.IsType<TimeoutException>(e);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"the handshake step took {watch.Elapsed} with a 1 s timeout");
        }
    }

    [Fact]
    public async Task AReplicaPinnedToASourceIdRefusesAnyOther()
    {
        using var q = SourceWith(10);
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r, new ReceiverOptions { SourceQueueId = Guid.NewGuid() });
            Assert.Equal("source", Assert.IsType<ShippingProtocolException>(await Record.ExceptionAsync(() => q.ExportToAsync(s))).Code);
            Assert.Equal("source", Assert.IsType<ShippingProtocolException>(await Record.ExceptionAsync(() => received)).Code);
        }
        Assert.False(File.Exists(Path.Combine(_replica, "queue.meta")));
    }
}
