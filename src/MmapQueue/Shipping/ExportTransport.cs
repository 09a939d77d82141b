using System.Buffers;
using MmapQueues.Native;
using MmapQueues.Storage;

namespace MmapQueues.Shipping;

/// <summary>How the exporter puts segment ranges on the wire: sendfile on a plain socket, else written from the mapping.</summary>
internal abstract class RangeSender
{
    public static RangeSender For(Connection c) => c.SendfileSocket is { } s ? new SendfileSender(s) : new StreamSender(c.Stream);

    /// <summary>True when <see cref="SendAsync"/> needs the segment's file open (sendfile) rather than the mapping.</summary>
    public abstract bool NeedsFile { get; }

    /// <summary>Sends the bytes [offset, offset+count) of a segment the caller holds a reference on.</summary>
    public abstract ValueTask SendAsync(Segment segment, FileStream? file, int offset, int count, bool sync, CancellationToken ct);

    /// <summary>A plain socket: segment bytes go from the page cache with ranged sendfile, no copy through user space.</summary>
    private sealed class SendfileSender(System.Net.Sockets.Socket socket) : RangeSender
    {
        public override bool NeedsFile => true;

        public override ValueTask SendAsync(Segment segment, FileStream? file, int offset, int count, bool sync, CancellationToken ct)
        {
            if (!sync) return new ValueTask(SocketSendfile.SendAsync(socket, file!, offset, count, segment.Path, ct));
            SocketSendfile.Send(socket, file!.SafeFileHandle, offset, count, segment.Path);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Any stream (TLS): the synchronous path writes straight from the mapping; the asynchronous one copies
    /// through a pooled buffer first, since a span over a mapping cannot cross an await.
    /// </summary>
    private sealed class StreamSender(Stream stream) : RangeSender
    {
        public override bool NeedsFile => false;

        public override async ValueTask SendAsync(Segment segment, FileStream? file, int offset, int count, bool sync, CancellationToken ct)
        {
            if (sync)
            {
                stream.Write(segment.Bytes.Slice(offset, count));
                return;
            }
            byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(count, 1 << 20));
            try
            {
                while (count > 0)
                {
                    int n = Math.Min(count, buffer.Length);
                    segment.Bytes.Slice(offset, n).CopyTo(buffer);
                    await stream.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    offset += n;
                    count -= n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }
}
