namespace MmapQueues.Shipping;

internal sealed partial class Exporter
{
    /// <summary>Starts reading ACK and ERROR: a dedicated thread for a synchronous session, a task otherwise.</summary>
    private Task StartAckReader()
    {
        if (!_sync) return ReadAcksAsync().AsTask();
        var thread = new Thread(() => ReadAcksAsync().GetAwaiter().GetResult()) { IsBackground = true, Name = "MmapQueue export acks" };
        thread.Start(); // in sync mode ReadAcksAsync never awaits anything incomplete: it runs to its end on this thread
        return Task.CompletedTask;
    }

    /// <summary>
    /// Reads ACK and ERROR until the connection ends; stores any failure for the session. An ACK is
    /// accepted only from the last one up to what was sent: a replica cannot acknowledge (and so commit
    /// the shipping consumer past) a record this session did not send.
    /// </summary>
    private async ValueTask ReadAcksAsync()
    {
        var h = new byte[WireProtocol.HeaderSize];
        TimeSpan forever = Timeout.InfiniteTimeSpan;
        try
        {
            while (true)
            {
                await _conn.ReadExactlyAsync(h, forever, _sync, CancellationToken.None, "an ACK").ConfigureAwait(false);
                WireProtocol.Header header = WireProtocol.ReadHeader(h, _queue.SegmentSize);
                if (header.Kind == WireProtocol.Kind.Error)
                    throw await _conn.ReadPeerErrorAsync(header, _options.HandshakeTimeout, _sync, CancellationToken.None, $"Shipping {_queue.Path}").ConfigureAwait(false);
                if (header.Kind != WireProtocol.Kind.Ack)
                    throw Refuse(ShippingProtocolException.Field("message from the receiver", WireProtocol.HeaderField.Kind, "ACK (4) or ERROR (5)", $"{header.Kind}"));
                long sent = Volatile.Read(ref _sent); // pairs with the Volatile.Write in RunCoreAsync
                long acked;
                lock (_ackLock) acked = _acked; // this reader is its only writer
                if (header.A < acked || header.A > sent)
                    throw Refuse(ShippingProtocolException.Field("ACK", WireProtocol.HeaderField.A, $"a durable sequence from {acked} to {sent} (sent so far)", $"{header.A}"));
                lock (_ackLock)
                {
                    // Retention by shipping, before the session can see the ACK: when it returns, the
                    // consumer is committed to where the replica is durable. Under the lock so that no commit
                    // follows the session releasing the name. A queue disposed meanwhile (follow mode ends that
                    // way) keeps its previous commit, which the next session moves on.
                    if (_consumer is not null && !_consumerReleased && !_queue.IsDisposed) _queue.CommitShipped(_consumer, header.A);
                    _acked = header.A;
                }
                _ackSignal.Release(); // wakes WaitForAckAsync
                Report(sent);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or TimeoutException or OperationCanceledException)
        {
            lock (_ackLock) _peerFailure ??= e; // the session rethrows it, with the position, unless it already finished
            _ackSignal.Release();
        }
    }
}
