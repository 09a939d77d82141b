using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace MmapQueues.Shipping;

/// <summary>
/// One end of a shipping connection: the stream protocol messages go over (a socket's NetworkStream, a
/// TLS stream, or the caller's stream), the socket when segment bytes may go by sendfile, and the
/// timed reads and writes both sides use. Every method takes <c>sync</c>: true runs the blocking calls
/// (and the returned task is already complete), false the asynchronous ones, so one body serves both
/// APIs without sync-over-async.
/// </summary>
internal sealed class Connection : IDisposable
{
    private readonly bool _ownsStream;
    private readonly Socket? _socket;
    private int _aborted;

    private Connection(Stream stream, Socket? sendfileSocket, string peer, WireProtocol.Auth auth, bool ownsStream, Socket? socket = null)
    {
        _socket = socket ?? sendfileSocket;
        Stream = stream;
        SendfileSocket = sendfileSocket;
        Peer = peer;
        Auth = auth;
        _ownsStream = ownsStream;
    }

    /// <summary>Where protocol messages go, both ways.</summary>
    public Stream Stream { get; }

    /// <summary>The plain socket under <see cref="Stream"/> when segment bytes may be sent with sendfile; null over TLS or a caller's stream.</summary>
    public Socket? SendfileSocket { get; }

    /// <summary>Who the peer is, for logs: an address, or the stream's type.</summary>
    public string Peer { get; }

    public WireProtocol.Auth Auth { get; }

    /// <summary>
    /// Sets up a socket for a session: keepalive on, plain TCP refused to a non-loopback peer unless
    /// authenticated or explicitly insecure, TLS negotiated (as client or server) within the handshake timeout.
    /// </summary>
    public static async ValueTask<Connection> OpenAsync(Socket socket, ShippingAuthentication? auth, bool asServer, TimeSpan handshakeTimeout,
        TimeSpan keepAlive, TimeSpan stallTimeout, bool sync, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(socket);
        SetKeepAlive(socket, keepAlive);
        SetStallTimeout(socket, stallTimeout);
        string peer = socket.RemoteEndPoint?.ToString() ?? "an unconnected socket";
        if (auth is null && !(socket.RemoteEndPoint is IPEndPoint ep && IPAddress.IsLoopback(ep.Address)))
            throw new InvalidOperationException($"Refusing plain TCP shipping with {peer}, which is not a loopback address: set an authentication " +
                                                "(TLS or a shared secret), or ShippingAuthentication.Insecure to allow it on purpose.");
        var network = new NetworkStream(socket, ownsSocket: false);
        if (auth?.Mode != WireProtocol.Auth.Tls) return new Connection(network, socket, peer, auth?.Mode ?? WireProtocol.Auth.None, ownsStream: true);
        SslStream tls = await NegotiateTlsAsync(network, leaveOpen: false, auth, asServer, handshakeTimeout, sync, ct).ConfigureAwait(false);
        return new Connection(tls, null, peer, WireProtocol.Auth.Tls, ownsStream: true, socket);
    }

    /// <summary>A caller's stream: plain unless TLS is asked for, in which case it is wrapped (the caller's stream stays open).</summary>
    public static async ValueTask<Connection> OpenAsync(Stream stream, ShippingAuthentication? auth, bool asServer, TimeSpan handshakeTimeout,
        bool sync, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        string peer = $"over a {stream.GetType().Name}";
        if (auth?.Mode != WireProtocol.Auth.Tls) return new Connection(stream, null, peer, auth?.Mode ?? WireProtocol.Auth.None, ownsStream: false);
        SslStream tls = await NegotiateTlsAsync(stream, leaveOpen: true, auth, asServer, handshakeTimeout, sync, ct).ConfigureAwait(false);
        return new Connection(tls, null, peer, WireProtocol.Auth.Tls, ownsStream: true);
    }

    /// <summary>Wraps <paramref name="inner"/> in TLS and negotiates it as client or server within <paramref name="timeout"/>; disposes the wrapper on failure.</summary>
    private static async ValueTask<SslStream> NegotiateTlsAsync(Stream inner, bool leaveOpen, ShippingAuthentication auth, bool asServer, TimeSpan timeout, bool sync, CancellationToken ct)
    {
        var tls = new SslStream(inner, leaveOpen);
        try
        {
            if (asServer)
            {
                SslServerAuthenticationOptions o = auth.Server ?? throw new InvalidOperationException("TLS on the receiving side needs server options (ShippingAuthentication.Tls(SslServerAuthenticationOptions) or MutualTls).");
                if (sync) WithTimeout(tls, timeout, () => tls.AuthenticateAsServer(o));
                else await WithTimeoutAsync(timeout, ct, t => tls.AuthenticateAsServerAsync(o, t)).ConfigureAwait(false);
            }
            else
            {
                SslClientAuthenticationOptions o = auth.Client ?? throw new InvalidOperationException("TLS on the exporting side needs client options (ShippingAuthentication.Tls(SslClientAuthenticationOptions) or MutualTls).");
                if (sync) WithTimeout(tls, timeout, () => tls.AuthenticateAsClient(o));
                else await WithTimeoutAsync(timeout, ct, t => tls.AuthenticateAsClientAsync(o, t)).ConfigureAwait(false);
            }
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            tls.Dispose();
            throw new ShippingProtocolException($"TLS authentication with the peer failed: {e.Message}", ShippingErrorCode.Auth, e);
        }
        catch
        {
            tls.Dispose();
            throw;
        }
        return tls;
    }

    private static void SetKeepAlive(Socket socket, TimeSpan idle)
    {
        if (socket.ProtocolType != ProtocolType.Tcp) return;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, idle > TimeSpan.Zero);
        if (idle <= TimeSpan.Zero) return;
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, (int)Math.Clamp(idle.TotalSeconds, 1, 32767)); // seconds idle before the first probe
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 10); // seconds between probes
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
    }

    /// <summary>
    /// TCP_USER_TIMEOUT: the kernel ends the connection (ETIMEDOUT) once bytes sent stay unacknowledged, or the
    /// peer's window stays shut, for <paramref name="timeout"/>. A peer that stops reading otherwise stalls a
    /// send (a sendfile or a write) forever: its kernel still answers keepalive and window probes. Linux only.
    /// </summary>
    private static void SetStallTimeout(Socket socket, TimeSpan timeout)
    {
        if (socket.ProtocolType != ProtocolType.Tcp || !OperatingSystem.IsLinux()) return;
        const int IpProtoTcp = 6, TcpUserTimeout = 18; // <netinet/tcp.h>
        int ms = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
        socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeout, BitConverter.GetBytes(ms));
    }

    /// <summary>Fills <paramref name="buffer"/>, or throws: <see cref="TimeoutException"/> after <paramref name="timeout"/>, IOException at the stream's end.</summary>
    public async ValueTask ReadExactlyAsync(Memory<byte> buffer, TimeSpan timeout, bool sync, CancellationToken ct, string what)
    {
        try
        {
            if (sync) ReadExactlyBlocking(buffer, timeout);
            else await WithTimeoutAsync(timeout, ct, t => Stream.ReadExactlyAsync(buffer, t).AsTask()).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new IOException($"The peer ({Peer}) closed the connection while this side waited for {what}.", e);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"The peer ({Peer}) sent no {what} within {timeout.TotalSeconds:0.#} s.", e);
        }
    }

    /// <summary>
    /// Fills <paramref name="buffer"/> with blocking reads, all of them within <paramref name="timeout"/> (each read
    /// waits only for what is left of it): a peer sending a byte at a time cannot stretch the wait.
    /// </summary>
    private void ReadExactlyBlocking(Memory<byte> buffer, TimeSpan timeout)
    {
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        int at = 0;
        while (at < buffer.Length)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0) throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s.");
            int n = 0;
            WithTimeout(Stream, deadline == long.MaxValue ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(left),
                () => n = Stream.Read(buffer.Span[at..]), Direction.Read);
            if (n == 0) throw new EndOfStreamException();
            at += n;
        }
    }

    /// <summary>
    /// Writes and flushes a protocol message, or throws <see cref="TimeoutException"/> after <paramref name="timeout"/>:
    /// a peer that stops reading (its window stays shut, which keepalive does not notice) cannot hold this side.
    /// </summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, TimeSpan timeout, bool sync, CancellationToken ct, string what)
    {
        try
        {
            if (sync)
            {
                WithTimeout(Stream, timeout, () =>
                {
                    Stream.Write(bytes.Span);
                    Stream.Flush();
                }, Direction.Write);
                return;
            }
            await WithTimeoutAsync(timeout, ct, async t =>
            {
                await Stream.WriteAsync(bytes, t).ConfigureAwait(false);
                await Stream.FlushAsync(t).ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"The peer ({Peer}) read nothing for {timeout.TotalSeconds:0.#} s while this side sent {what}.", e);
        }
    }

    /// <summary>Sends ERROR with <paramref name="code"/> and its fixed sentence, best effort (the caller throws the real error).</summary>
    public void TrySendError(string code)
    {
        byte[] text = System.Text.Encoding.ASCII.GetBytes(ShippingErrorCode.Text(code));
        int n = Math.Min(text.Length, WireProtocol.MaxErrorBytes);
        var msg = new byte[WireProtocol.HeaderSize + n];
        WireProtocol.WriteHeader(msg, WireProtocol.Kind.Error, n, 0, 0);
        text.AsSpan(0, n).CopyTo(msg.AsSpan(WireProtocol.HeaderSize));
        try
        {
            // A write timeout only: another thread (the exporter's ACK reader) may be reading this stream.
            if (Stream.CanTimeout) Stream.WriteTimeout = 5000;
            Stream.Write(msg);
            Stream.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or TimeoutException or InvalidOperationException or NotSupportedException)
        {
            // The connection is already broken; the caller throws the original error, which is what matters.
        }
    }

    /// <summary>
    /// Reads a handshake message of the expected type and checks its prefix (in this connection's mode);
    /// when the peer sent ERROR instead, throws it (<see cref="ShippingProtocolException.FromPeer"/>).
    /// </summary>
    public async ValueTask<byte[]> ReadHandshakeAsync(WireProtocol.Message expected, long segmentSize, TimeSpan timeout, bool sync, CancellationToken ct, string context)
    {
        var b = new byte[Math.Max(WireProtocol.SizeOf(expected), WireProtocol.HeaderSize)];
        string what = expected.ToString().ToUpperInvariant();
        await ReadExactlyAsync(b.AsMemory(0, WireProtocol.PrefixSize), timeout, sync, ct, what).ConfigureAwait(false);
        if (b[0] == (byte)WireProtocol.Kind.Error)
        {
            await ReadExactlyAsync(b.AsMemory(WireProtocol.PrefixSize, WireProtocol.HeaderSize - WireProtocol.PrefixSize), timeout, sync, ct, "ERROR").ConfigureAwait(false);
            WireProtocol.Header h = WireProtocol.ReadHeader(b, segmentSize);
            throw await ReadPeerErrorAsync(h, timeout, sync, ct, context).ConfigureAwait(false);
        }
        WireProtocol.CheckPrefix(b, expected, Auth);
        await ReadExactlyAsync(b.AsMemory(WireProtocol.PrefixSize, WireProtocol.SizeOf(expected) - WireProtocol.PrefixSize), timeout, sync, ct, what).ConfigureAwait(false);
        return b.AsSpan(0, WireProtocol.SizeOf(expected)).ToArray();
    }

    /// <summary>Reads an ERROR body whose header was read, and makes the exception for it (text sanitized).</summary>
    public async ValueTask<ShippingProtocolException> ReadPeerErrorAsync(WireProtocol.Header h, TimeSpan timeout, bool sync, CancellationToken ct, string context)
    {
        var text = new byte[h.Length]; // bounded by WireProtocol.MaxErrorBytes in ReadHeader
        await ReadExactlyAsync(text, timeout, sync, ct, "the peer's error text").ConfigureAwait(false);
        string safe = ShippingErrorCode.Sanitize(text);
        string code = ShippingErrorCode.CodeOf(safe);
        string ours = code == ShippingErrorCode.Version ? $" (this side speaks shipping protocol {WireProtocol.ProtocolVersion})" : "";
        return new ShippingProtocolException($"{context}: the peer ({Peer}) refused the session: {safe}{ours}", code) { FromPeer = true };
    }

    /// <summary>Which of a stream's blocking timeouts <see cref="WithTimeout"/> sets.</summary>
    [Flags]
    private enum Direction { Read = 1, Write = 2, Both = Read | Write }

    /// <summary>
    /// Runs a blocking call with the stream's timeouts in <paramref name="direction"/> set to <paramref name="timeout"/>
    /// (an infinite one leaves them alone). A read touches only the read timeout and a write only the write
    /// timeout: the synchronous exporter reads ACKs on one thread while it writes on another.
    /// </summary>
    private static void WithTimeout(Stream stream, TimeSpan timeout, Action action, Direction direction = Direction.Both)
    {
        if (!stream.CanTimeout || timeout == Timeout.InfiniteTimeSpan)
        {
            action();
            return;
        }
        int old = stream.ReadTimeout, oldWrite = stream.WriteTimeout;
        int ms = (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds);
        if (direction.HasFlag(Direction.Read)) stream.ReadTimeout = ms;
        if (direction.HasFlag(Direction.Write)) stream.WriteTimeout = ms;
        try
        {
            action();
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s.", e);
        }
        finally
        {
            if (direction.HasFlag(Direction.Read)) stream.ReadTimeout = old;
            if (direction.HasFlag(Direction.Write)) stream.WriteTimeout = oldWrite;
        }
    }

    private static async Task WithTimeoutAsync(TimeSpan timeout, CancellationToken ct, Func<CancellationToken, Task> action)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await action(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s.", e);
        }
    }

    /// <summary>Makes blocked calls return and ends the connection (on cancellation, a timeout or a failure); idempotent.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 1) return;
        if (_socket is null)
        {
            Stream.Dispose();
            return;
        }
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (ObjectDisposedException)
        {
            // the caller closed the socket already: blocked calls have returned
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.NotConnected)
        {
            // the peer reset the connection already: blocked calls have returned
        }
    }

    public void Dispose()
    {
        if (_ownsStream) Stream.Dispose();
    }
}
