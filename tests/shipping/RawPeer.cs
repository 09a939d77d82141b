using System.Buffers.Binary;
using System.Net.Sockets;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Shipping;

/// <summary>
/// A hand-driven end of a shipping connection, for hostile-peer tests: writes and reads protocol
/// messages byte by byte, as an attacker with the protocol's source would.
/// </summary>
internal sealed class RawPeer(Socket socket) : IDisposable
{
    public Socket Socket { get; } = socket;

    public void Send(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty) bytes = bytes[Socket.Send(bytes)..];
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes, or fewer if the peer closes (then returns what came).</summary>
    public byte[] Read(int count, int timeoutMs = 30_000)
    {
        Socket.ReceiveTimeout = timeoutMs;
        var b = new byte[count];
        int at = 0;
        while (at < count)
        {
            int n = Socket.Receive(b, at, count - at, SocketFlags.None);
            if (n == 0) break;
            at += n;
        }
        return b[..at];
    }

    /// <summary>
    /// Waits for a receiving session to end, closes its end of the connection (as a server does), and
    /// returns the session's failure and everything this peer was sent, as ASCII.
    /// </summary>
    public async Task<(Exception? Error, string Answer)> OutcomeOf(Task<long> session, Socket serverEnd)
    {
        Exception? e = await Xunit.Record.ExceptionAsync(() => session.WaitAsync(TimeSpan.FromSeconds(60)));
        serverEnd.Shutdown(SocketShutdown.Both);
        return (e, ReadToEnd());
    }

    /// <summary>Everything until the peer closes (bounded), as ASCII.</summary>
    public string ReadToEnd(int timeoutMs = 30_000)
    {
        Socket.ReceiveTimeout = timeoutMs;
        var all = new MemoryStream();
        var b = new byte[4096];
        try
        {
            int n;
            while ((n = Socket.Receive(b)) > 0 && all.Length < 1 << 20) all.Write(b, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.TimedOut)
        {
            // a reset after the ERROR, or silence: what came before is the answer
        }
        return System.Text.Encoding.ASCII.GetString(all.ToArray());
    }

    public static byte[] Hello(long segmentSize, Guid queueId, long startBase, WireProtocol.Auth auth = WireProtocol.Auth.None, byte[]? nonce = null)
    {
        var b = new byte[WireProtocol.HelloSize];
        WireProtocol.WriteHello(b, new WireProtocol.Hello(segmentSize, queueId, startBase), auth, nonce ?? new byte[WireProtocol.NonceSize]);
        return b;
    }

    public static byte[] Resume(long next, Guid queueId, long segmentBase, int offset)
    {
        var b = new byte[WireProtocol.ResumeSize];
        WireProtocol.WriteResume(b, new WireProtocol.Resume(next, queueId, segmentBase, offset), WireProtocol.Auth.None);
        return b;
    }

    public static byte[] Header(WireProtocol.Kind kind, int length, long a, long b)
    {
        var h = new byte[WireProtocol.HeaderSize];
        WireProtocol.WriteHeader(h, kind, length, a, b);
        return h;
    }

    /// <summary>A CHUNK carrying <paramref name="frames"/> at <paramref name="offset"/> of segment <paramref name="segmentBase"/>.</summary>
    public static byte[] Chunk(long segmentBase, int offset, byte[] frames) => [.. Header(WireProtocol.Kind.Chunk, frames.Length, segmentBase, offset), .. frames];

    /// <summary>A valid record frame (word, CRC, payload, padding) for <paramref name="sequence"/>.</summary>
    public static byte[] Record(long sequence, ReadOnlySpan<byte> payload)
    {
        uint word = SegmentLayout.RecordWord(payload.Length);
        var f = new byte[SegmentLayout.FrameLength(payload.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(f, word);
        payload.CopyTo(f.AsSpan(SegmentLayout.RecordHeaderSize));
        Frames.WriteCrc(f, 0, sequence, word, payload.Length);
        return f;
    }

    /// <summary>A valid end-of-segment marker whose CRC carries <paramref name="nextSequence"/>.</summary>
    public static byte[] EndMarker(long nextSequence)
    {
        var f = new byte[SegmentLayout.RecordHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(f, SegmentLayout.EndOfSegmentWord);
        Frames.WriteCrc(f, 0, nextSequence, SegmentLayout.EndOfSegmentWord, 0);
        return f;
    }

    /// <summary>The queue id a source's queue.meta holds.</summary>
    public static Guid QueueIdOf(string queueDir) => QueueDirectory.ReadMeta(Path.Combine(queueDir, "queue.meta")).QueueId;

    public void Dispose() => Socket.Dispose();
}
