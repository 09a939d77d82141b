using System.Net.Sockets;
using MmapQueues.Shipping;

namespace MmapQueues;

/// <summary>
/// <c>queue.ExportTo(socket)</c>: the short form of <see cref="QueueExporter"/> for one session with
/// default or given options.
/// </summary>
public static class ShippingExtensions
{
    /// <summary>Ships <paramref name="queue"/> to the replica on <paramref name="socket"/>; see <see cref="QueueExporter.Export(Socket, long)"/>.</summary>
    /// <returns>The next sequence not sent: every record before it is durable on the replica.</returns>
    public static long ExportTo(this MmapQueue queue, Socket socket, long fromSequence = 0) =>
        new QueueExporter(queue).Export(socket, fromSequence);

    /// <summary>Ships <paramref name="queue"/> over <paramref name="stream"/>; see <see cref="QueueExporter.Export(Stream, long)"/>.</summary>
    /// <returns>The next sequence not sent: every record before it is durable on the replica.</returns>
    public static long ExportTo(this MmapQueue queue, Stream stream, long fromSequence = 0) =>
        new QueueExporter(queue).Export(stream, fromSequence);

    /// <summary>Ships <paramref name="queue"/> asynchronously; see <see cref="QueueExporter.ExportAsync(Socket, long, CancellationToken)"/>.</summary>
    /// <returns>The next sequence not sent: every record before it is durable on the replica.</returns>
    public static Task<long> ExportToAsync(this MmapQueue queue, Socket socket, long fromSequence = 0, ExportOptions? options = null, CancellationToken cancellationToken = default) =>
        new QueueExporter(queue, options).ExportAsync(socket, fromSequence, cancellationToken);

    /// <summary>Ships <paramref name="queue"/> asynchronously over <paramref name="stream"/>; see <see cref="QueueExporter.ExportAsync(Stream, long, CancellationToken)"/>.</summary>
    /// <returns>The next sequence not sent: every record before it is durable on the replica.</returns>
    public static Task<long> ExportToAsync(this MmapQueue queue, Stream stream, long fromSequence = 0, ExportOptions? options = null, CancellationToken cancellationToken = default) =>
        new QueueExporter(queue, options).ExportAsync(stream, fromSequence, cancellationToken);
}
