using System.Net.Sockets;

namespace MmapQueues.Tests.Shipping;

public sealed class ResumeTests
{
    [Fact]
    public void ConnectionKilledAtRandomPointsResumesWithNothingLostOrDuplicated()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        var rng = new Random(11);
        int cuts = 0, senderSideCuts = 0;
        using (var q = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 4L << 20 }))
        {
            Loopback.AppendMixed(q, 64L << 20, seed: 2, maxRecord: 256 << 10);
            for (int session = 0; session < 200; session++)
            {
                long cutAt = rng.Next(1, 4 << 20);
                bool cutOnSender = session % 3 == 2; // the sender's side dies (ExportTo(Stream)); else the receiver's (sendfile path)
                (Socket s, Socket r) = Loopback.Pair();
                using (s)
                using (r)
                {
                    Stream receiveStream = cutOnSender ? new NetworkStream(r) : new CuttingStream(new NetworkStream(r), r, cutAt);
                    Task<long> received = Loopback.Receive(replica, receiveStream);
                    try
                    {
                        long sent = cutOnSender ? q.ExportTo(new CuttingStream(new NetworkStream(s), s, cutAt)) : q.ExportTo(s);
                        Assert.Equal(sent, received.GetAwaiter().GetResult());
                        Assert.Equal(q.NextSequence, sent);
                        break;
                    }
                    catch (IOException)
                    {
                        cuts++;
                        if (cutOnSender) senderSideCuts++;
                        CuttingStream.Kill(s); // the other end's blocked calls return
                        Assert.ThrowsAny<IOException>(() => received.GetAwaiter().GetResult());
                    }
                }
            }
        }
        Assert.True(cuts >= 20, $"only {cuts} sessions were cut");
        Assert.True(senderSideCuts >= 5, $"only {senderSideCuts} sender-side cuts");
        Loopback.AssertSameSegments(source, replica);
        Loopback.AssertSameRecords(source, replica);
    }
}

/// <summary>A stream that kills its socket (RST) after <c>limit</c> bytes read or written: a connection dying mid-flight.</summary>
internal sealed class CuttingStream(Stream inner, Socket socket, long limit) : DuplexTestStream
{
    private long _left = limit;

    public static void Kill(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0); // close with RST, as a killed peer's kernel would
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
            // already closed: the connection is dead, which is all we want
        }
    }

    private int Allow(int count)
    {
        if (_left <= 0)
        {
            Kill(socket);
            throw new IOException("test: connection cut");
        }
        return (int)Math.Min(count, _left);
    }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer[..Allow(buffer.Length)]);
        _left -= n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer[..Allow(buffer.Length)], cancellationToken);
        _left -= n;
        return n;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int n = Allow(buffer.Length);
            inner.Write(buffer[..n]);
            _left -= n;
            buffer = buffer[n..];
        }
    }
}
