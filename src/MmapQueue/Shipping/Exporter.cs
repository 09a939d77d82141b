using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Shipping;

/// <summary>
/// The sending side of one shipping session (protocol in <see cref="WireProtocol"/>): handshake, then
/// visible records as raw segment ranges, then END (or, when following, SYNC and wait for more).
/// Runs in the caller's mode: <c>sync</c> blocks the calling thread (a second thread reads ACKs),
/// otherwise every wait is awaited (ACKs are read by a task).
/// </summary>
internal sealed partial class Exporter
{
    private readonly MmapQueue _queue;
    private readonly Connection _conn;
    private readonly RangeSender _ranges;
    private readonly ExportOptions _options;
    private readonly bool _sync;
    private readonly CancellationToken _cancel;
    private readonly byte[] _header = new byte[WireProtocol.HeaderSize];

    // One lock, named: _acked and _peerFailure are written by the ack reader and read by the session under
    // _ackLock (and _consumerReleased the other way round). _ackSignal is released after each change.
    private readonly object _ackLock = new();
    private readonly SemaphoreSlim _ackSignal = new(0);
    private long _acked;
    private Exception? _peerFailure;
    private long _sent;  // Volatile: written by the session before each range, read by the ack reader to bound ACKs
    private long _bytes;
    private bool _connected; // the handshake succeeded: PeerConnected was logged, PeerDisconnected follows

    private readonly string? _consumer;  // retention by shipping: committed at every ACK (ExportOptions.ConsumerName)
    private ShippedMarks.Lease? _marks;  // the durable highest sequence sent to _consumer
    private bool _consumerReleased;      // under _ackLock: the session has ended and released _consumer

    public Exporter(MmapQueue queue, Connection conn, ExportOptions options, bool sync, CancellationToken cancel)
    {
        _queue = queue;
        _conn = conn;
        _ranges = RangeSender.For(conn);
        _options = options;
        _consumer = options.ConsumerName;
        _sync = sync;
        _cancel = cancel;
    }

    /// <summary>Runs the session; returns the next sequence not sent (all before it are durable on the replica).</summary>
    public async ValueTask<long> RunAsync(long fromSequence)
    {
        if (_consumer is not null)
        {
            _queue.OpenShippingConsumer(_consumer);
            _marks = ShippedMarks.Open(_queue);
        }
        using CancellationTokenRegistration abort = _cancel.Register(_conn.Abort);
        string reason = "failed";
        bool ended = false;
        try
        {
            long next = await RunCoreAsync(fromSequence).ConfigureAwait(false);
            reason = "the session ended (END acknowledged)";
            ended = true;
            return next;
        }
        catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
        {
            reason = "the session was cancelled";
            throw;
        }
        catch (Exception e) when (_cancel.IsCancellationRequested && e is IOException or ObjectDisposedException)
        {
            reason = "the session was cancelled";
            throw new OperationCanceledException($"Export from {_queue.Path} was cancelled.", e, _cancel);
        }
        catch (Exception e)
        {
            reason = $"{e.GetType().Name}: {e.Message}";
            throw;
        }
        finally
        {
            if (_connected)
            {
                long acked;
                lock (_ackLock) acked = _acked;
                Log.PeerDisconnected(_queue.Logger, _conn.Peer, _queue.Path, acked, reason);
            }
            // Ends the ack reader too (it reads until the connection closes). A cancelled session, or a
            // failed one, must not leave the peer waiting on an open connection.
            if (!ended) _conn.Abort();
            if (_consumer is not null)
            {
                lock (_ackLock) _consumerReleased = true; // the ack reader, if still reading, commits no more
                _marks?.Dispose();
                _queue.CloseConsumer(_consumer);
            }
            _lease?.Dispose(); // after RunCoreAsync released its segment
        }
    }

    private async ValueTask<long> RunCoreAsync(long fromSequence)
    {
        long first = _queue.FirstSequence, next = _queue.NextSequence;
        if (fromSequence < 0 || fromSequence > next)
            throw new ArgumentOutOfRangeException(nameof(fromSequence), fromSequence,
                $"Queue {_queue.Path} holds sequences [{first}, {next}); cannot export from {fromSequence}.");
        // Only an empty replica starts there, and it can start no earlier than what the queue still holds. An
        // existing replica resumes where it is: after retention deleted what it holds, a start of 0 still resumes it.
        fromSequence = Math.Max(fromSequence, first);
        long startBase = _queue.FindSegment(fromSequence)!.BaseSequence;
        long stopAt = _options.Follow ? long.MaxValue : next;

        WireProtocol.Resume resume = await HandshakeAsync(startBase).ConfigureAwait(false);
        (Segment seg, int off, long seq, bool segmentDone) = Locate(resume, startBase);
        _acked = seq;
        _sent = seq;
        _connected = true;
        Log.PeerConnected(_queue.Logger, _conn.Peer, _queue.Path, seq);
        Task acks = StartAckReader();

        FileStream? file = null;
        long syncedAt = -1;
        try
        {
            file = OpenForSendfile(seg);
            // segmentDone is sticky until the hand-over: a reader process's scan from past the end marker cannot tell
            // the end was passed (it sees only the watermark there), so a walk that passed it is remembered.
            while (true)
            {
                _cancel.ThrowIfCancellationRequested();
                ThrowIfPeerFailed(seq);
                (int end, long endSeq, bool done) = ScanVisible(seg, off, seq, stopAt);
                segmentDone |= done;
                bool progressed = end > off;
                if (progressed) _marks?.Raise(_consumer!, endSeq); // durably, before a byte of it leaves
                Volatile.Write(ref _sent, endSeq); // before sending: the replica may ack part of the range before it ends; pairs with the Volatile.Read in the ack reader
                await SendRangeAsync(seg, file, off, end).ConfigureAwait(false);
                off = end;
                seq = endSeq;
                if (progressed) Report(seq);
                if (segmentDone && _queue.SegmentStartingAt(seq) is { } nextSeg && nextSeg != seg)
                {
                    HandOver(seg, nextSeg, seq);
                    seg = nextSeg;
                    segmentDone = false;
                    file?.Dispose();
                    file = OpenForSendfile(seg);
                    off = SegmentLayout.FirstRecordOffset;
                    continue;
                }
                if (progressed) continue;

                // Caught up with what is visible.
                if (!_options.Follow || seq >= stopAt) return await FinishAsync(seq).ConfigureAwait(false);
                if (syncedAt != seq)
                {
                    await SendControlAsync(WireProtocol.Kind.Sync, seq).ConfigureAwait(false);
                    syncedAt = seq;
                }
                switch (await WaitForMoreAsync(seg, off, seq, segmentDone).ConfigureAwait(false))
                {
                    case WaitResult.Disposed:
                        return await FinishAsync(seq).ConfigureAwait(false);
                    case WaitResult.Idle:
                        await SendControlAsync(WireProtocol.Kind.Sync, seq).ConfigureAwait(false); // heartbeat: the replica acks it
                        break;
                }
            }
        }
        finally
        {
            file?.Dispose();
            seg.Release();
            if (_sync) _ = acks; // the ack thread ends when the connection closes
        }
    }

    /// <summary>Sends END, waits (at most the idle timeout) until the replica acknowledged <paramref name="seq"/> as durable, returns it.</summary>
    private async ValueTask<long> FinishAsync(long seq)
    {
        await SendControlAsync(WireProtocol.Kind.End, seq).ConfigureAwait(false);
        await WaitForAckAsync(seq, "END").ConfigureAwait(false);
        return seq;
    }

    /// <summary>Waits until the replica acknowledged <paramref name="seq"/>; throws the peer's failure, or a timeout after the idle timeout.</summary>
    private async ValueTask WaitForAckAsync(long seq, string what)
    {
        long deadline = Environment.TickCount64 + (long)_options.IdleTimeout.TotalMilliseconds;
        while (true)
        {
            lock (_ackLock)
            {
                if (_acked >= seq) return;
                ThrowIfPeerFailedUnderAckLock(seq);
            }
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
                throw new TimeoutException($"Shipping {_queue.Path} to {_conn.Peer}: the replica did not acknowledge {what} (sequence {seq}) " +
                                           $"within {_options.IdleTimeout.TotalSeconds:0.#} s.");
            int wait = (int)Math.Min(left, 100);
            if (_sync) _ackSignal.Wait(wait, _cancel);
            else await _ackSignal.WaitAsync(wait, _cancel).ConfigureAwait(false);
        }
    }

    private async ValueTask SendRangeAsync(Segment seg, FileStream? file, int from, int end)
    {
        while (from < end)
        {
            int n = Math.Min(WireProtocol.MaxChunkBytes, end - from);
            WireProtocol.WriteHeader(_header, WireProtocol.Kind.Chunk, n, seg.BaseSequence, from);
            if (_sync) _conn.Stream.Write(_header);
            else await _conn.Stream.WriteAsync(_header, _cancel).ConfigureAwait(false);
            await _ranges.SendAsync(seg, file, from, n, _sync, _cancel).ConfigureAwait(false);
            from += n;
            _bytes += n;
            _queue.ReportExported(n, _conn.Peer);
        }
    }

    private ValueTask SendControlAsync(WireProtocol.Kind kind, long sequence)
    {
        WireProtocol.WriteHeader(_header, kind, 0, sequence, 0);
        return _conn.WriteAsync(_header, _options.IdleTimeout, _sync, _cancel, kind == WireProtocol.Kind.End ? "END" : "SYNC");
    }

    private FileStream? OpenForSendfile(Segment seg)
    {
        if (!_ranges.NeedsFile) return null;
        FileStream file = Storage.QueueFiles.OpenForAsyncRead(seg.Path);
        if (seg.IsReaderView) CheckOpenedFile(seg, file); // opened by name after the mapping: the same file?
        return file;
    }

    private enum WaitResult { More, Idle, Disposed }

    /// <summary>
    /// Waits until a record after (seg, off) is visible (follow mode, asynchronous sessions only); Idle
    /// after a quarter of the idle timeout with nothing new (the caller sends a heartbeat SYNC and checks
    /// that the last one was acknowledged); Disposed when the queue was disposed. In a reader process "more" means
    /// more durable (the header watermark moved, or the next segment is listed once this one is done): the writer's
    /// publishes wake the wait, its flushes do not, so a flush with no publish after it is seen when the wait's slice ends.
    /// </summary>
    private async ValueTask<WaitResult> WaitForMoreAsync(Segment seg, int off, long seq, bool segmentDone)
    {
        bool HasMore() => seg.IsReaderView
            ? DurableAfter(seg, off) || segmentDone && _queue.SegmentStartingAt(seq) is { } next && next != seg // lists the directory only at a segment's end
            : (off + SegmentLayout.RecordHeaderSize <= seg.Size // acquire load: pairs with PublishHeader; a claim is not more yet
               && Frames.ClassifyWord(seg.ReadWord(off), out _) is not (FrameKind.Empty or FrameKind.Claimed))
              || _queue.SegmentStartingAt(seq) is { } s && s != seg;
        long beatAt = Environment.TickCount64 + (long)(_options.IdleTimeout / 4).TotalMilliseconds;
        while (!HasMore())
        {
            if (_queue.IsDisposed) return WaitResult.Disposed;
            ThrowIfPeerFailed(seq);
            if (Environment.TickCount64 >= beatAt)
            {
                await WaitForAckAsync(seq, "the last SYNC").ConfigureAwait(false); // the replica is alive and caught up
                return WaitResult.Idle;
            }
            await _queue.WaitForPublishAsync(HasMore, _cancel).ConfigureAwait(false); // returns within a few ms without a publish
            _cancel.ThrowIfCancellationRequested();
        }
        return WaitResult.More;
    }

    private void Report(long seq)
    {
        if (_options.Progress is null) return;
        long acked;
        lock (_ackLock) acked = _acked;
        _options.Progress.Report(new ShippingProgress(seq, acked, _bytes));
    }

    private void ThrowIfPeerFailed(long seq)
    {
        lock (_ackLock) ThrowIfPeerFailedUnderAckLock(seq);
    }

    private void ThrowIfPeerFailedUnderAckLock(long seq)
    {
        System.Diagnostics.Debug.Assert(Monitor.IsEntered(_ackLock), "the peer's failure and _acked are read under the ack lock");
        Exception? e = _peerFailure;
        if (e is null) return;
        string message = $"Shipping {_queue.Path} failed at sequence {seq} (replica durable up to {_acked}): {e.Message}";
        throw e is ShippingProtocolException p ? new ShippingProtocolException(message, p.Code, e) : new IOException(message, e);
    }
}
