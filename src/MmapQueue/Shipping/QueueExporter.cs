using System.Net.Sockets;

namespace MmapQueues.Shipping;

/// <summary>
/// Ships a queue to replicas (a peer running <see cref="QueueReceiver"/>): the raw bytes of the segment
/// files, only visible records, sent with ranged <c>sendfile</c> straight from the page cache over a
/// plain socket (or written from the mapping over TLS or a caller's stream). Each call is one session; it
/// returns once the replica has acknowledged every record sent as durable.
/// </summary>
/// <remarks>
/// A connection carries one session: close it after the call returns, and connect again for the next one.
/// On a queue opened with <see cref="MmapQueueOptions.ReadOnly"/> (a process beside the writer) only records the
/// writer made durable are sent, as the segment headers' durable watermarks prove them: those of the writer's
/// active segment wait until it rolls or the writer closes.
/// The asynchronous methods are the primary API; the synchronous ones block the calling thread on the same
/// session body (genuinely synchronous calls, no waiting on tasks) and cannot follow the tail.
/// </remarks>
public sealed class QueueExporter
{
    private readonly MmapQueue _queue;
    private readonly ExportOptions _options;

    /// <summary>An exporter of <paramref name="queue"/> with <paramref name="options"/> (null: defaults).</summary>
    public QueueExporter(MmapQueue queue, ExportOptions? options = null)
    {
        _queue = queue ?? throw new ArgumentNullException(nameof(queue));
        _options = (options ?? new ExportOptions()).Check();
    }

    /// <summary>
    /// Runs one session over a connected stream socket. Plain TCP (no <see cref="ExportOptions.Authentication"/>)
    /// is refused unless the peer is a loopback address or the authentication is <see cref="ShippingAuthentication.Insecure"/>.
    /// </summary>
    /// <param name="socket">A connected stream socket; it is not closed. TCP keepalive is turned on.</param>
    /// <param name="fromSequence">Where a new (empty) replica starts: at the segment holding this sequence (or the
    /// queue's first, when retention deleted it).
    /// An existing replica resumes where it is, whatever this says (its records are contiguous from its first segment).</param>
    /// <param name="cancellationToken">Ends the session (the socket is shut down); in follow mode, the way to stop.</param>
    /// <returns>The next sequence not sent: every record before it is durable on the replica.</returns>
    /// <exception cref="ShippingProtocolException">The replica is of another queue, does not line up, failed authentication, or sent bytes the protocol does not allow.</exception>
    /// <exception cref="IOException">The connection broke; calling again resumes from the replica's durable position.</exception>
    /// <exception cref="TimeoutException">A handshake step or the final acknowledgement took longer than the option allows.</exception>
    public async Task<long> ExportAsync(Socket socket, long fromSequence = 0, CancellationToken cancellationToken = default)
    {
        _queue.ThrowIfDisposedForShipping();
        using Connection c = await Connection.OpenAsync(socket, _options.Authentication, asServer: false, _options.HandshakeTimeout, _options.KeepAliveTime, _options.IdleTimeout, sync: false, cancellationToken).ConfigureAwait(false);
        return await new Exporter(_queue, c, _options, sync: false, cancellationToken).RunAsync(fromSequence).ConfigureAwait(false);
    }

    /// <summary>As <see cref="ExportAsync(Socket, long, CancellationToken)"/> over any stream (the caller's TLS, a pipe): segment bytes are written from the mapping. The stream is not closed.</summary>
    public async Task<long> ExportAsync(Stream stream, long fromSequence = 0, CancellationToken cancellationToken = default)
    {
        _queue.ThrowIfDisposedForShipping();
        using Connection c = await Connection.OpenAsync(stream, _options.Authentication, asServer: false, _options.HandshakeTimeout, sync: false, cancellationToken).ConfigureAwait(false);
        return await new Exporter(_queue, c, _options, sync: false, cancellationToken).RunAsync(fromSequence).ConfigureAwait(false);
    }

    /// <summary>As <see cref="ExportAsync(Socket, long, CancellationToken)"/>, blocking the calling thread (no <see cref="ExportOptions.Follow"/>).</summary>
    public long Export(Socket socket, long fromSequence = 0)
    {
        ThrowIfFollow();
        _queue.ThrowIfDisposedForShipping();
        using Connection c = Completed(Connection.OpenAsync(socket, _options.Authentication, asServer: false, _options.HandshakeTimeout, _options.KeepAliveTime, _options.IdleTimeout, sync: true, CancellationToken.None));
        return Completed(new Exporter(_queue, c, _options, sync: true, CancellationToken.None).RunAsync(fromSequence));
    }

    /// <summary>As <see cref="ExportAsync(Stream, long, CancellationToken)"/>, blocking the calling thread (no <see cref="ExportOptions.Follow"/>).</summary>
    public long Export(Stream stream, long fromSequence = 0)
    {
        ThrowIfFollow();
        _queue.ThrowIfDisposedForShipping();
        using Connection c = Completed(Connection.OpenAsync(stream, _options.Authentication, asServer: false, _options.HandshakeTimeout, sync: true, CancellationToken.None));
        return Completed(new Exporter(_queue, c, _options, sync: true, CancellationToken.None).RunAsync(fromSequence));
    }

    private void ThrowIfFollow()
    {
        if (_options.Follow)
            throw new InvalidOperationException("ExportOptions.Follow waits for new records without end: use ExportAsync, whose token stops it.");
    }

    /// <summary>The result of a session body run with <c>sync: true</c>, which never awaits anything incomplete.</summary>
    private static T Completed<T>(ValueTask<T> t)
    {
        if (!t.IsCompleted) throw new InvalidOperationException("A synchronous shipping call did not complete synchronously (a bug).");
        return t.GetAwaiter().GetResult();
    }
}
