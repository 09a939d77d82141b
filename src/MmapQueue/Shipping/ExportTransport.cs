using System.Net.Sockets;
using MmapQueues.Native;
using MmapQueues.Storage;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Shipping;

/// <summary>How the exporter puts bytes on the wire: protocol messages, and segment ranges.</summary>
internal abstract class ExportTransport : IDisposable
{
    /// <summary>The direction the receiver answers on (RESUME, ACK, ERROR).</summary>
    public abstract Stream Incoming { get; }

    /// <summary>Who the replica is, for the peer log events: an address, or the stream's type.</summary>
    public abstract string Peer { get; }

    /// <summary>Writes a protocol message (header or handshake) completely.</summary>
    public abstract void Write(ReadOnlySpan<byte> bytes);

    /// <summary>Sends the bytes [offset, offset+count) of a segment the caller holds a reference on.</summary>
    public abstract void SendRange(Segment segment, SafeFileHandle? file, int offset, int count);

    /// <summary>True when <see cref="SendRange"/> needs an open file handle (sendfile) rather than the mapping.</summary>
    public abstract bool NeedsFile { get; }

    /// <summary>Pushes out anything the transport buffers (after SYNC and END).</summary>
    public virtual void Flush() { }

    /// <summary>Makes blocked calls return and ends the connection (used on cancellation); idempotent.</summary>
    public abstract void Abort();

    public abstract void Dispose();
}

/// <summary>A socket: segment bytes go out with ranged sendfile, no copy through user space.</summary>
internal sealed class SocketTransport(Socket socket) : ExportTransport
{
    private readonly NetworkStream _incoming = new(socket, ownsSocket: false);

    public override Stream Incoming => _incoming;
    public override string Peer { get; } = socket.RemoteEndPoint?.ToString() ?? "an unconnected socket";
    public override bool NeedsFile => true;

    public override void Write(ReadOnlySpan<byte> bytes)
    {
        try
        {
            while (!bytes.IsEmpty) bytes = bytes[socket.Send(bytes)..];
        }
        catch (SocketException e)
        {
            throw new IOException($"Sending to the replica failed: {e.Message}", e);
        }
    }

    public override void SendRange(Segment segment, SafeFileHandle? file, int offset, int count) =>
        SocketSendfile.Send(socket, file!, offset, count, segment.Path);

    private int _aborted;

    public override void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 1) return; // the cancellation callback and Run's finally both call it
        try
        {
            socket.Shutdown(SocketShutdown.Both);
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

    public override void Dispose() => _incoming.Dispose();
}

/// <summary>Any stream (TLS through SslStream): segment bytes are written from the mapping, copied through user space.</summary>
internal sealed class StreamTransport(Stream stream) : ExportTransport
{
    public override Stream Incoming => stream;
    public override string Peer => $"over a {stream.GetType().Name}";
    public override bool NeedsFile => false;
    public override void Write(ReadOnlySpan<byte> bytes) => stream.Write(bytes);
    public override void Flush() => stream.Flush();

    public override void SendRange(Segment segment, SafeFileHandle? file, int offset, int count) =>
        stream.Write(segment.Bytes.Slice(offset, count));

    public override void Abort() => stream.Dispose();
    public override void Dispose() { }
}
