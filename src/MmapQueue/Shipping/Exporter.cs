using MmapQueues.Format;
using MmapQueues.Storage;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Shipping;

/// <summary>
/// The sending side of one shipping session (protocol in <see cref="WireProtocol"/>): handshake, then
/// visible records as raw segment ranges, then END (or, when following, SYNC and wait for more).
/// Runs on the calling thread; a second thread reads the receiver's ACK and ERROR messages.
/// </summary>
internal sealed partial class Exporter
{
    private readonly MmapQueue _queue;
    private readonly ExportTransport _transport;
    private readonly bool _follow;
    private readonly IProgress<ShippingProgress>? _progress;
    private readonly CancellationToken _cancel;
    private readonly byte[] _header = new byte[WireProtocol.HeaderSize];

    // One lock, named: _acked and _peerFailure are written by the ack thread and read by Run under _ackLock
    // (and _consumerReleased the other way round).
    private readonly object _ackLock = new();
    private long _acked;
    private Exception? _peerFailure;
    private long _sent;  // Volatile: written by Run before each range, read by the ack thread to bound ACKs
    private long _bytes;
    private bool _connected; // the handshake succeeded: PeerConnected was logged, PeerDisconnected follows

    private readonly string? _consumer; // retention by shipping: committed at every ACK (ExportOptions.ConsumerName)
    private bool _consumerReleased;     // under _ackLock: Run has ended and released _consumer

    public Exporter(MmapQueue queue, ExportTransport transport, ExportOptions? options, CancellationToken cancel)
    {
        _queue = queue;
        _transport = transport;
        _follow = options?.Follow ?? false;
        _progress = options?.Progress;
        _consumer = options?.ConsumerName;
        _cancel = cancel;
    }

    /// <summary>Runs the session; returns the next sequence not sent (all before it are durable on the replica).</summary>
    public long Run(long fromSequence)
    {
        if (_consumer is not null) _queue.OpenShippingConsumer(_consumer);
        using CancellationTokenRegistration abort = _cancel.Register(_transport.Abort);
        string reason = "failed";
        try
        {
            long next = RunCore(fromSequence);
            reason = "the session ended (END acknowledged)";
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
                Log.PeerDisconnected(_queue.Logger, _transport.Peer, _queue.Path, acked, reason);
            }
            // Cancellation callbacks run one at a time, the last registered first: the wait for new records
            // (WaitForMore) can wake this thread, which then disposes `abort` before Abort ran, and the
            // peer would wait forever on an open connection. So a cancelled session shuts it down here too.
            if (_cancel.IsCancellationRequested) _transport.Abort();
            if (_consumer is not null)
            {
                lock (_ackLock) _consumerReleased = true; // the ack thread, if still reading, commits no more
                _queue.CloseConsumer(_consumer);
            }
        }
    }

    private long RunCore(long fromSequence)
    {
        long first = _queue.FirstSequence, next = _queue.NextSequence;
        if (fromSequence < first || fromSequence > next)
            throw new ArgumentOutOfRangeException(nameof(fromSequence), fromSequence,
                $"Queue {_queue.Path} holds sequences [{first}, {next}); cannot export from {fromSequence}.");
        long startBase = _queue.FindSegment(fromSequence)!.BaseSequence;
        long stopAt = _follow ? long.MaxValue : next;

        WireProtocol.Resume resume = Handshake(startBase);
        (Segment seg, int off, long seq) = Locate(resume);
        _acked = seq;
        _sent = seq;
        _connected = true;
        Log.PeerConnected(_queue.Logger, _transport.Peer, _queue.Path, seq);
        var ackThread = new Thread(ReadAcks) { IsBackground = true, Name = "MmapQueue export acks" };
        ackThread.Start();

        SafeFileHandle? file = null;
        long syncedAt = -1;
        try
        {
            file = OpenForSendfile(seg);
            while (true)
            {
                _cancel.ThrowIfCancellationRequested();
                ThrowIfPeerFailed(seq);
                (int end, long endSeq, bool segmentDone) = ScanVisible(seg, off, seq, stopAt);
                bool progressed = end > off;
                Volatile.Write(ref _sent, endSeq); // before sending: the replica may ack part of the range before it ends; pairs with the Volatile.Read in ReadAcks
                SendRange(seg, file, off, end);
                off = end;
                seq = endSeq;
                if (progressed) Report(seq);
                if (segmentDone && _queue.SegmentStartingAt(seq) is { } nextSeg && nextSeg != seg)
                {
                    nextSeg.Acquire();
                    seg.Release();
                    seg = nextSeg;
                    file?.Dispose();
                    file = OpenForSendfile(seg);
                    off = SegmentLayout.FirstRecordOffset;
                    continue;
                }
                if (progressed) continue;

                // Caught up with what is visible.
                if (!_follow || seq >= stopAt) return Finish(seq);
                if (syncedAt != seq)
                {
                    SendControl(WireProtocol.Kind.Sync, seq);
                    syncedAt = seq;
                }
                if (!WaitForMore(seg, off, seq)) return Finish(seq); // the queue was disposed
            }
        }
        finally
        {
            file?.Dispose();
            seg.Release();
        }
    }

    /// <summary>Sends END, waits until the replica acknowledged <paramref name="seq"/> as durable, returns it.</summary>
    private long Finish(long seq)
    {
        SendControl(WireProtocol.Kind.End, seq);
        lock (_ackLock)
        {
            while (_acked < seq)
            {
                _cancel.ThrowIfCancellationRequested();
                ThrowIfPeerFailedUnsynchronized(seq);
                Monitor.Wait(_ackLock, TimeSpan.FromMilliseconds(100)); // pulsed by ReadAcks
            }
        }
        return seq;
    }

    private void SendRange(Segment seg, SafeFileHandle? file, int from, int end)
    {
        while (from < end)
        {
            int n = Math.Min(WireProtocol.MaxChunkBytes, end - from);
            WireProtocol.WriteHeader(_header, WireProtocol.Kind.Chunk, n, seg.BaseSequence, from);
            _transport.Write(_header);
            _transport.SendRange(seg, file, from, n);
            from += n;
            _bytes += n;
        }
    }

    private void SendControl(WireProtocol.Kind kind, long sequence)
    {
        WireProtocol.WriteHeader(_header, kind, 0, sequence, 0);
        _transport.Write(_header);
        _transport.Flush();
    }

    private SafeFileHandle? OpenForSendfile(Segment seg) =>
        _transport.NeedsFile ? Storage.QueueFiles.OpenExisting(seg.Path, write: false) : null;

    /// <summary>Blocks until a record after (seg, off) is visible; false if the queue was disposed.</summary>
    private bool WaitForMore(Segment seg, int off, long seq)
    {
        bool HasMore() =>
            (off + SegmentLayout.RecordHeaderSize <= seg.Size && seg.ReadWord(off) != 0) // acquire: pairs with PublishWord
            || _queue.SegmentStartingAt(seq) is { } s && s != seg;
        while (!HasMore())
        {
            if (_queue.IsDisposed) return false;
            ThrowIfPeerFailed(seq);
            _queue.WaitForPublishAsync(HasMore, _cancel).GetAwaiter().GetResult();
            _cancel.ThrowIfCancellationRequested();
        }
        return true;
    }

    private void Report(long seq)
    {
        if (_progress is null) return;
        long acked;
        lock (_ackLock) acked = _acked;
        _progress.Report(new ShippingProgress(seq, acked, _bytes));
    }

    private void ThrowIfPeerFailed(long seq)
    {
        lock (_ackLock) ThrowIfPeerFailedUnsynchronized(seq);
    }

    private void ThrowIfPeerFailedUnsynchronized(long seq)
    {
        Exception? e = _peerFailure;
        if (e is null) return;
        string message = $"Shipping {_queue.Path} failed at sequence {seq} (replica durable up to {_acked}): {e.Message}";
        throw e is ShippingProtocolException ? new ShippingProtocolException(message, e) : new IOException(message, e);
    }

    /// <summary>The ack thread: reads ACK and ERROR until the connection ends; stores any failure for Run.</summary>
    private void ReadAcks()
    {
        var h = new byte[WireProtocol.HeaderSize];
        try
        {
            while (true)
            {
                _transport.Incoming.ReadExactly(h);
                WireProtocol.Header header = WireProtocol.ReadHeader(h, _queue.SegmentSize);
                if (header.Kind == WireProtocol.Kind.Error) throw ReadPeerError(header);
                if (header.Kind != WireProtocol.Kind.Ack)
                    throw ShippingProtocolException.Field("message from the receiver", 0, "ACK (4) or ERROR (5)", $"{header.Kind}");
                long sent = Volatile.Read(ref _sent); // pairs with the Volatile.Write in RunCore
                long acked;
                lock (_ackLock) acked = _acked; // this thread is its only writer
                if (header.A < acked || header.A > sent)
                    throw ShippingProtocolException.Field("ACK", 8, $"a durable sequence from {acked} to {sent} (sent so far)", $"{header.A}");
                lock (_ackLock)
                {
                    // Retention by shipping, before Finish can see the ACK: when the session returns, the
                    // consumer is committed to where the replica is durable. Under the lock so that no commit
                    // follows Run releasing the name. A queue disposed meanwhile (follow mode ends that way)
                    // keeps its previous commit, which the next session moves on.
                    if (_consumer is not null && !_consumerReleased && !_queue.IsDisposed) _queue.CommitShipped(_consumer, header.A);
                    _acked = header.A;
                    Monitor.PulseAll(_ackLock); // wakes Finish
                }
                Report(sent);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            lock (_ackLock)
            {
                _peerFailure ??= e; // Run rethrows it, with the position, unless it already finished
                Monitor.PulseAll(_ackLock);
            }
        }
    }

    private ShippingProtocolException ReadPeerError(WireProtocol.Header header)
    {
        var text = new byte[header.Length]; // bounded by WireProtocol.MaxErrorBytes in ReadHeader
        _transport.Incoming.ReadExactly(text);
        return new ShippingProtocolException($"the receiver refused the stream: {System.Text.Encoding.UTF8.GetString(text)}");
    }

    internal static ShippingProtocolException ReadPeerError(Stream s, ReadOnlySpan<byte> header, long segmentSize)
    {
        WireProtocol.Header h = WireProtocol.ReadHeader(header, segmentSize);
        var text = new byte[h.Length];
        s.ReadExactly(text);
        return new ShippingProtocolException($"the peer refused the stream: {System.Text.Encoding.UTF8.GetString(text)}");
    }

    /// <summary>Sends ERROR with <paramref name="e"/>'s message (best effort), so the peer can say why it was cut off.</summary>
    internal static void TrySendError(Action<ReadOnlyMemory<byte>> write, Exception e)
    {
        byte[] text = System.Text.Encoding.UTF8.GetBytes(e.Message);
        int n = Math.Min(text.Length, WireProtocol.MaxErrorBytes);
        var msg = new byte[WireProtocol.HeaderSize + n];
        WireProtocol.WriteHeader(msg, WireProtocol.Kind.Error, n, 0, 0);
        text.AsSpan(0, n).CopyTo(msg.AsSpan(WireProtocol.HeaderSize));
        try
        {
            write(msg);
        }
        catch (Exception sendFailure) when (sendFailure is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // The connection is already broken; the caller throws the original error, which is what matters.
        }
    }
}
