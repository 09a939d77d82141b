using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MmapQueues.Shipping;

/// <summary>
/// A replica: receives a queue shipped by <see cref="QueueExporter"/> into the directory at
/// <see cref="Path"/>. A new replica (no queue.meta yet) adopts the source's queue id (or only the pinned
/// <see cref="ReceiverOptions.SourceQueueId"/>) and segment size (up to <see cref="ReceiverOptions.MaxSegmentSizeBytes"/>);
/// an existing one must match them and resumes at its own durable position. Each record's CRC is checked
/// before its commit word is published; the replica flushes, then acknowledges its durable position. The
/// replica's segment files end up byte-identical to the source's.
/// </summary>
/// <remarks>
/// One session at a time: a second one that authenticates while another runs is refused with the code
/// <c>busy</c> (it is not queued). The replica queue is opened (and its writer lock held) only for a session.
/// A failing peer gets a short error code; the details go to the exception and the log.
/// </remarks>
public sealed class QueueReceiver
{
    private readonly ReceiverOptions _options;
    private readonly SemaphoreSlim _session = new(1, 1);
    private readonly ILogger _logger;

    /// <summary>A receiver into the replica directory <paramref name="path"/> (created on the first session).</summary>
    public QueueReceiver(string path, ReceiverOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        _options = (options ?? new ReceiverOptions()).Check();
        _logger = _options.LoggerFactory?.CreateLogger("MmapQueues.Shipping.QueueReceiver") ?? NullLogger.Instance;
    }

    /// <summary>The replica's directory.</summary>
    public string Path { get; }

    /// <summary>Connections <see cref="ServeAsync"/> serves at once (handshaking, refused as busy, or the one session); more wait in the listen backlog.</summary>
    internal int MaxConnections { get; init; } = 256;

    /// <summary>
    /// Runs one session on a connected socket (TCP keepalive is turned on). Plain TCP (no
    /// <see cref="ReceiverOptions.Authentication"/>) is refused unless the peer is a loopback address or
    /// the authentication is <see cref="ShippingAuthentication.Insecure"/>.
    /// </summary>
    /// <param name="socket">A connected stream socket whose peer exports. It is not closed.</param>
    /// <param name="progress">Receives progress after each acknowledgement; null for none.</param>
    /// <param name="cancellationToken">Ends the session; records already published stay (and are flushed).</param>
    /// <returns>The replica's next sequence; every record before it is durable.</returns>
    /// <exception cref="ShippingProtocolException">The sender failed authentication, was refused (see its <see cref="ShippingProtocolException.Code"/>), or sent bytes the protocol does not allow; nothing from the bad record on was kept.</exception>
    /// <exception cref="IOException">The connection broke; receiving again resumes at the replica's durable position.</exception>
    /// <exception cref="TimeoutException">The sender was silent longer than the handshake or idle timeout.</exception>
    public async Task<long> ReceiveAsync(Socket socket, IProgress<ShippingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(socket);
        using Connection c = await OpenLoggedAsync(socket.RemoteEndPoint?.ToString() ?? "a peer", () =>
            Connection.OpenAsync(socket, _options.Authentication, asServer: true, _options.HandshakeTimeout, _options.KeepAliveTime, _options.IdleTimeout, sync: false, cancellationToken)).ConfigureAwait(false);
        return await RunAsync(c, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>As <see cref="ReceiveAsync(Socket, IProgress{ShippingProgress}?, CancellationToken)"/> from any stream (the caller's TLS, a pipe). The stream is not closed.</summary>
    public async Task<long> ReceiveAsync(Stream stream, IProgress<ShippingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using Connection c = await OpenLoggedAsync($"over a {stream.GetType().Name}", () =>
            Connection.OpenAsync(stream, _options.Authentication, asServer: true, _options.HandshakeTimeout, sync: false, cancellationToken)).ConfigureAwait(false);
        return await RunAsync(c, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sets up the connection (keepalive, the loopback rule, TLS); a failure there is logged like any refused session.</summary>
    private async Task<Connection> OpenLoggedAsync(string peer, Func<ValueTask<Connection>> open)
    {
        try
        {
            return await open().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.ReplicaSessionFailed(_logger, peer, Path, e.GetType().Name, e.Message);
            throw;
        }
    }

    /// <summary>
    /// Accepts connections on a bound, listening socket until <paramref name="cancellationToken"/> is
    /// cancelled, each served concurrently on its own task: a silent or hostile peer holds only its own
    /// connection (until the handshake or idle timeout), never the replica. Every session's outcome goes to
    /// <paramref name="sessionEnded"/>; a failed session never ends the loop, nor does a failed accept (out of
    /// descriptors: logged, event 1045). At most 256 connections are served at once; more wait in the listen backlog. Plain TCP is refused on a
    /// non-loopback address unless the authentication is <see cref="ShippingAuthentication.Insecure"/>.
    /// </summary>
    /// <exception cref="OperationCanceledException">Always, once cancelled, after every session has ended.</exception>
    public async Task ServeAsync(Socket listener, Action<ReceivedSession>? sessionEnded = null, IProgress<ShippingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        if (_options.Authentication is null && !(listener.LocalEndPoint is IPEndPoint ep && IPAddress.IsLoopback(ep.Address)))
            throw new InvalidOperationException($"Refusing to receive plain TCP on {listener.LocalEndPoint}, which is not a loopback address: set an " +
                                                "authentication (TLS or a shared secret), or ShippingAuthentication.Insecure to allow it on purpose.");
        var sessions = new List<Task>();
        try
        {
            while (true)
            {
                sessions.RemoveAll(t => t.IsCompleted);
                // At most MaxConnections at once: more wait in the listen backlog until one ends (each ends by
                // the handshake or idle timeout at the latest), so connections cannot exhaust descriptors.
                if (sessions.Count >= MaxConnections) await Task.WhenAny(sessions).WaitAsync(cancellationToken).ConfigureAwait(false);
                Socket peer;
                try
                {
                    peer = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable
                                                    or SocketError.ConnectionAborted or SocketError.ConnectionReset or SocketError.Interrupted)
                {
                    // Out of descriptors or memory (other connections, or the rest of the process), or a connection
                    // gone while queued: the receiver stays up and accepts again.
                    const int delayMs = 200;
                    Log.ReceiverAcceptFailed(_logger, Path, e.Message, delayMs);
                    await Task.Delay(delayMs, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                sessions.Add(ServeOneAsync(peer, sessionEnded, progress, cancellationToken));
            }
        }
        finally
        {
            await Task.WhenAll(sessions).ConfigureAwait(false); // each ends on the token or its own timeout
        }
    }

    private async Task ServeOneAsync(Socket peer, Action<ReceivedSession>? sessionEnded, IProgress<ShippingProgress>? progress, CancellationToken ct)
    {
        await Task.Yield(); // the accept loop goes on at once
        string who = peer.RemoteEndPoint?.ToString() ?? "a peer";
        using (peer)
        {
            try
            {
                long next = await ReceiveAsync(peer, progress, ct).ConfigureAwait(false);
                sessionEnded?.Invoke(new ReceivedSession(who, next, null));
            }
            catch (Exception e)
            {
                // Whatever one peer caused ends only its session: it was logged in RunAsync and is reported here.
                sessionEnded?.Invoke(new ReceivedSession(who, null, e));
            }
        }
    }

    private async Task<long> RunAsync(Connection c, IProgress<ShippingProgress>? progress, CancellationToken ct)
    {
        bool holdsSession = false;
        try
        {
            WireProtocol.Hello hello = await HandshakeAsync(c, ct).ConfigureAwait(false);
            if (!_session.Wait(0))
                throw new ShippingProtocolException($"Replica {Path}: a session from {c.Peer} was refused: another session is in progress.", ShippingErrorCode.Busy);
            holdsSession = true;
            using MmapQueue replica = ReplicaDirectory.Open(Path, hello, _options);
            Log.ReplicaSessionStarted(_logger, c.Peer, Path, replica.NextSequence);
            replica.Flush(); // RESUME promises a durable position
            long next = await new Receiver(replica, c, _options.IdleTimeout, progress, ct).RunAsync().ConfigureAwait(false);
            Log.ReplicaSessionEnded(_logger, c.Peer, Path, next);
            return next;
        }
        catch (Exception e)
        {
            Log.ReplicaSessionFailed(_logger, c.Peer, Path, e.GetType().Name, e.Message);
            if (e is not ShippingProtocolException { FromPeer: true } && !ct.IsCancellationRequested) c.TrySendError(ShippingErrorCode.Of(e));
            throw;
        }
        finally
        {
            if (holdsSession) _session.Release();
        }
    }

    /// <summary>HELLO in; in shared-secret mode CHALLENGE out and PROOF in (checked); the HELLO's fields checked against this replica's limits.</summary>
    private async Task<WireProtocol.Hello> HandshakeAsync(Connection c, CancellationToken ct)
    {
        TimeSpan timeout = _options.HandshakeTimeout;
        string context = $"Replica {Path}";
        byte[] hello = await c.ReadHandshakeAsync(WireProtocol.Message.Hello, WireProtocol.MaxChunkBytes, timeout, sync: false, ct, context).ConfigureAwait(false);

        if (c.Auth == WireProtocol.Auth.SharedSecret)
        {
            ShippingAuthentication key = _options.Authentication!;
            var challenge = new byte[WireProtocol.ChallengeSize];
            WireProtocol.WritePrefix(challenge, WireProtocol.Message.Challenge, c.Auth);
            System.Security.Cryptography.RandomNumberGenerator.Fill(challenge.AsSpan(WireProtocol.HandshakeField.ChallengeNonce, WireProtocol.NonceSize));
            key.ReceiverMac(hello, challenge.AsSpan(0, WireProtocol.HandshakeField.ChallengeMac)).CopyTo(challenge.AsSpan(WireProtocol.HandshakeField.ChallengeMac));
            await c.WriteAsync(challenge, timeout, sync: false, ct, "CHALLENGE").ConfigureAwait(false);
            byte[] proof = await c.ReadHandshakeAsync(WireProtocol.Message.Proof, WireProtocol.MaxChunkBytes, timeout, sync: false, ct, context).ConfigureAwait(false);
            if (!ShippingAuthentication.MacEquals(key.SenderMac(hello, challenge), proof.AsSpan(WireProtocol.HandshakeField.ProofMac, WireProtocol.MacSize)))
                throw new ShippingProtocolException($"Replica {Path}: the sender {c.Peer} sent a wrong PROOF: it does not hold the shared secret.", ShippingErrorCode.Auth);
        }

        WireProtocol.Hello h = WireProtocol.ReadHello(hello);
        if (h.SegmentSize > _options.MaxSegmentSizeBytes)
            throw new ShippingProtocolException($"Replica {Path}: the sender {c.Peer} ships {h.SegmentSize}-byte segments; this replica adopts at most " +
                                                $"{_options.MaxSegmentSizeBytes} (ReceiverOptions.MaxSegmentSizeBytes, mmapq receive --max-segment-size).", ShippingErrorCode.Limit);
        if (_options.SourceQueueId is { } pinned && pinned != h.QueueId)
            throw new ShippingProtocolException($"Replica {Path}: the sender {c.Peer} ships queue {h.QueueId}; this replica accepts only {pinned}.", ShippingErrorCode.Source);
        return h;
    }
}

/// <summary>How one session served by <see cref="QueueReceiver.ServeAsync"/> ended.</summary>
/// <param name="Peer">The peer's address.</param>
/// <param name="NextSequence">The replica's durable next sequence when the session ended cleanly; null when it failed.</param>
/// <param name="Error">Why it failed; null when it ended cleanly.</param>
public readonly record struct ReceivedSession(string Peer, long? NextSequence, Exception? Error);
