using System.Net.Sockets;
using MmapQueues.Format;
using MmapQueues.Shipping;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    /// <summary>
    /// Receives a queue shipped by <see cref="ExportTo(Socket, long)"/> into the replica at
    /// <paramref name="path"/> and returns when the sender ends the session. A new replica (no queue.meta
    /// yet) adopts the source's queue id and segment size; an existing one must match them and resumes at
    /// its own durable position. Each record's CRC is checked before its commit word is published; the
    /// replica flushes, then acknowledges its durable position. The replica's segment files end up
    /// byte-identical to the source's. The replica is opened (and its writer lock held) only for the session.
    /// </summary>
    /// <param name="path">The replica's directory.</param>
    /// <param name="socket">A connected stream socket whose peer exports. It is not closed.</param>
    /// <param name="options">Options for the replica queue; its segment size is always the source's.</param>
    /// <param name="progress">Receives progress after each acknowledgement; null for none.</param>
    /// <param name="cancellationToken">Ends the session; records already published stay (and are flushed).</param>
    /// <returns>The replica's next sequence; every record before it is durable.</returns>
    /// <exception cref="ShippingProtocolException">The sender sent bytes the protocol does not allow; nothing from the bad record on was kept.</exception>
    /// <exception cref="IOException">The connection broke; receiving again resumes at the replica's durable position.</exception>
    public static long ReceiveFrom(string path, Socket socket, MmapQueueOptions? options = null,
        IProgress<ShippingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ReceiveFromAsync(path, socket, options, progress, cancellationToken).GetAwaiter().GetResult();

    /// <summary>As <see cref="ReceiveFrom(string, Socket, MmapQueueOptions?, IProgress{ShippingProgress}?, CancellationToken)"/> from any stream (for TLS, an <c>SslStream</c>).</summary>
    public static long ReceiveFrom(string path, Stream stream, MmapQueueOptions? options = null,
        IProgress<ShippingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ReceiveFromAsync(path, stream, options, progress, cancellationToken).GetAwaiter().GetResult();

    /// <summary>Asynchronous <see cref="ReceiveFrom(string, Socket, MmapQueueOptions?, IProgress{ShippingProgress}?, CancellationToken)"/>.</summary>
    public static async Task<long> ReceiveFromAsync(string path, Socket socket, MmapQueueOptions? options = null,
        IProgress<ShippingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(socket);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        return await ReceiveFromAsync(path, stream, options, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asynchronous <see cref="ReceiveFrom(string, Stream, MmapQueueOptions?, IProgress{ShippingProgress}?, CancellationToken)"/>.</summary>
    public static async Task<long> ReceiveFromAsync(string path, Stream stream, MmapQueueOptions? options = null,
        IProgress<ShippingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(stream);
        var hello = new byte[WireProtocol.HandshakeSize];
        await stream.ReadExactlyAsync(hello, cancellationToken).ConfigureAwait(false);
        WireProtocol.Hello h;
        MmapQueue replica;
        try
        {
            h = WireProtocol.ReadHello(hello);
            replica = OpenReplica(path, h, options ?? new MmapQueueOptions());
        }
        catch (ShippingProtocolException e)
        {
            Exporter.TrySendError(m => stream.Write(m.Span), e);
            throw;
        }
        using (replica)
        {
            replica.Flush(); // RESUME promises a durable position
            var receiver = new Receiver(replica, stream, progress, cancellationToken);
            return await receiver.RunAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Opens the replica for a session. A new one first gets queue.meta with the source's id and segment
    /// size, and, when the source ships from a later segment, its first segment file at that base sequence,
    /// so that the queue then opens exactly as a copy of the source would.
    /// </summary>
    private static MmapQueue OpenReplica(string path, WireProtocol.Hello h, MmapQueueOptions options)
    {
        string dir = System.IO.Path.GetFullPath(path);
        QueueFiles.CreateDirectory(dir, options.FilePermissions);
        string metaPath = System.IO.Path.Combine(dir, SegmentNames.MetaName);
        if (QueueDirectory.TryReadMeta(metaPath) is not { } m)
        {
            if (QueueDirectory.ListSegments(dir).Count > 0)
                throw new ShippingProtocolException($"Replica directory {dir} holds segment files but no {SegmentNames.MetaName}; refusing to adopt queue {h.QueueId} over them.");
            QueueDirectory.OpenOrCreateMeta(dir, h.SegmentSize, h.QueueId, options.FilePermissions);
            if (h.StartBase > 0)
            {
                Segment first = SegmentFiles.CreateSpare(dir, h.SegmentSize, options.FilePermissions);
                SegmentFiles.Activate(first, dir, h.StartBase, h.QueueId);
                first.Release();
                Native.Libc.FsyncDirectory(dir);
            }
        }
        else
        {
            if (m.QueueId != h.QueueId || m.SegmentSize != h.SegmentSize)
                throw new ShippingProtocolException($"Replica {dir} is a copy of queue {m.QueueId} with {m.SegmentSize}-byte segments; " +
                                                    $"the sender ships queue {h.QueueId} with {h.SegmentSize}-byte segments.");
        }
        MmapQueueOptions o = options.Clone();
        o.SegmentSizeBytes = h.SegmentSize;
        return new MmapQueue(dir, o);
    }

    // ---- hooks for the receiver (Shipping/Receiver.cs); a replica has no other writer ----------------

    /// <summary>The segment the replica appends in.</summary>
    internal Segment ActiveSegment => Volatile.Read(ref _active);

    /// <summary>
    /// Publishes a record the receiver copied into the active segment at <paramref name="offset"/> and
    /// whose CRC it checked: reserves exactly that frame (it must be the next one), then release-stores the
    /// commit word last, as Enqueue does; readers' ReadWord pairs with it.
    /// </summary>
    internal void PublishReplicated(Segment segment, int offset, int frameLength, uint word, long sequence)
    {
        if (!segment.TryReserve(frameLength, out int at, out long seq) || at != offset || seq != sequence)
            throw new InvalidOperationException($"Replica {_directory}: expected to append sequence {sequence} at offset {offset} of {segment}, " +
                                                $"but the writer's tail is at sequence {seq}, offset {at}; a replica must have no other writer.");
        segment.PublishWord(offset, word); // commit: pairs with ReadWord in readers and the flusher
        AfterPublish(sequence);
    }

    /// <summary>Rolls the replica as the source rolled: seal, list the next segment, write the same end marker.</summary>
    internal void RollReplicated(Segment full) => Roll(full, tryOnly: false, CancellationToken.None);
}
