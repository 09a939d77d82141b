using System.Net.Sockets;
using MmapQueues.Shipping;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    /// <summary>
    /// Ships this queue to a replica listening on <paramref name="socket"/> (a connected stream socket
    /// whose peer runs <see cref="ReceiveFrom(string, Socket, MmapQueueOptions?, IProgress{ShippingProgress}?, CancellationToken)"/>):
    /// the raw bytes of the segment files, only visible records, sent with ranged <c>sendfile</c> straight
    /// from the page cache. Returns once the replica has acknowledged every record sent as durable.
    /// </summary>
    /// <param name="socket">A connected, blocking or non-blocking stream socket. It is not closed, but it carries one
    /// session: close it after this returns (a thread reading the replica's acknowledgements ends when it closes)
    /// and connect again for the next session.</param>
    /// <param name="fromSequence">Where a new (empty) replica starts: at the segment holding this sequence.
    /// An existing replica resumes where it is, whatever this says (its records are contiguous from its first segment).</param>
    /// <returns>The next sequence not sent: every record before it is durable on the replica.</returns>
    /// <exception cref="ShippingProtocolException">The replica is of another queue, does not line up, or sent bytes the protocol does not allow.</exception>
    /// <exception cref="IOException">The connection broke; calling again resumes from the replica's durable position.</exception>
    public long ExportTo(Socket socket, long fromSequence = 0)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ThrowIfDisposed();
        using var transport = new SocketTransport(socket);
        return new Exporter(this, transport, options: null, CancellationToken.None).Run(fromSequence);
    }

    /// <summary>
    /// As <see cref="ExportTo(Socket, long)"/>, over any stream (for TLS, an <c>SslStream</c>): the same
    /// protocol, but segment bytes are written from the mapping, so they pass through user space.
    /// </summary>
    public long ExportTo(Stream stream, long fromSequence = 0)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ThrowIfDisposed();
        return new Exporter(this, new StreamTransport(stream), options: null, CancellationToken.None).Run(fromSequence);
    }

    /// <summary>
    /// As <see cref="ExportTo(Socket, long)"/> on a dedicated thread, with progress and, when
    /// <see cref="ExportOptions.Follow"/> is set, a live mode that keeps shipping new records as they are
    /// published until <paramref name="cancellationToken"/> is cancelled (which shuts the socket down) or
    /// the queue is disposed (which ends the session cleanly with END).
    /// </summary>
    public Task<long> ExportToAsync(Socket socket, long fromSequence = 0, ExportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ThrowIfDisposed();
        return RunExport(new SocketTransport(socket), fromSequence, options, cancellationToken);
    }

    /// <summary>As <see cref="ExportToAsync(Socket, long, ExportOptions?, CancellationToken)"/> over a stream (cancellation disposes the stream).</summary>
    public Task<long> ExportToAsync(Stream stream, long fromSequence = 0, ExportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ThrowIfDisposed();
        return RunExport(new StreamTransport(stream), fromSequence, options, cancellationToken);
    }

    private Task<long> RunExport(ExportTransport transport, long fromSequence, ExportOptions? options, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() =>
        {
            using (transport)
                return new Exporter(this, transport, options, cancellationToken).Run(fromSequence);
        }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>
    /// The queue's identity, drawn when the directory was created and kept in <c>queue.meta</c>: it tells this
    /// queue's records apart from another queue's wherever they travel (a forwarder's message ids, for example).
    /// </summary>
    public Guid QueueId => _queueId;
    internal long SegmentSize => _segmentSize;
}
