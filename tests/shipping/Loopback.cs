using System.Net;
using System.Net.Sockets;
using MmapQueues.Shipping;

namespace MmapQueues.Tests.Shipping;

/// <summary>Loopback plumbing and queue helpers shared by the shipping tests.</summary>
internal static class Loopback
{
    /// <summary>A connected pair of TCP sockets over 127.0.0.1.</summary>
    public static (Socket Sender, Socket Receiver) Pair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        sender.Connect(listener.LocalEndPoint!);
        return (sender, listener.Accept());
    }

    /// <summary>A TCP socket listening on 127.0.0.1 (a free port), backlog 8.</summary>
    public static Socket Listener()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        return listener;
    }

    /// <summary>One complete session: ExportTo(Socket) on this thread, QueueReceiver.ReceiveAsync on the pool; both must agree.</summary>
    public static long Ship(MmapQueue source, string replica, long fromSequence = 0)
    {
        (Socket s, Socket r) = Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(replica, r);
            long sent = source.ExportTo(s, fromSequence);
            Assert.Equal(sent, received.GetAwaiter().GetResult());
            return sent;
        }
    }

    /// <summary>One receiving session into <paramref name="replica"/> with default options.</summary>
    public static Task<long> Receive(string replica, Socket socket, ReceiverOptions? options = null) => new QueueReceiver(replica, options).ReceiveAsync(socket);

    /// <summary>One receiving session from a stream into <paramref name="replica"/> with default options.</summary>
    public static Task<long> Receive(string replica, Stream stream, ReceiverOptions? options = null) => new QueueReceiver(replica, options).ReceiveAsync(stream);

    private static readonly byte[] Noise = MakeNoise();

    private static byte[] MakeNoise()
    {
        var b = new byte[8 << 20];
        new Random(7).NextBytes(b);
        return b;
    }

    /// <summary>
    /// Appends about <paramref name="totalBytes"/> of records in mixed sizes (mostly small, some up to
    /// <paramref name="maxRecord"/>), with an aborted claim now and then. Returns the records appended.
    /// </summary>
    public static long AppendMixed(MmapQueue q, long totalBytes, int seed, int maxRecord = 1 << 20)
    {
        var rng = new Random(seed);
        long bytes = 0, records = 0;
        while (bytes < totalBytes)
        {
            int roll = rng.Next(1000);
            int size = roll switch
            {
                < 600 => rng.Next(0, 257),
                < 850 => rng.Next(257, 4097),
                < 950 => rng.Next(4097, 65_537),
                _ => rng.Next(65_537, maxRecord + 1),
            };
            size = Math.Min(size, q.MaxPayloadBytes);
            if (roll == 999)
            {
                Assert.Throws<InvalidOperationException>(() =>
                    q.Enqueue(size, 0, (_, _) => throw new InvalidOperationException("test: abandoned claim")));
            }
            else
            {
                q.Enqueue(Noise.AsSpan(rng.Next(Noise.Length - size), size));
            }
            bytes += size + 8;
            records++;
        }
        return records;
    }

    /// <summary>Asserts both directories hold the same segment files with the same bytes.</summary>
    public static void AssertSameSegments(string source, string replica)
    {
        string[] Names(string dir) => Directory.GetFiles(dir, "*.seg").Select(Path.GetFileName).Order().ToArray()!;
        string[] names = Names(source);
        Assert.NotEmpty(names);
        Assert.Equal(names, Names(replica));
        var a = new byte[1 << 20];
        var b = new byte[1 << 20];
        foreach (string name in names)
        {
            using var fa = File.OpenRead(Path.Combine(source, name));
            using var fb = File.OpenRead(Path.Combine(replica, name));
            Assert.Equal(fa.Length, fb.Length);
            for (long at = 0; at < fa.Length; at += a.Length)
            {
                int n = (int)Math.Min(a.Length, fa.Length - at);
                fa.ReadExactly(a.AsSpan(0, n));
                fb.ReadExactly(b.AsSpan(0, n));
                if (!a.AsSpan(0, n).SequenceEqual(b.AsSpan(0, n)))
                {
                    int i = a.AsSpan(0, n).CommonPrefixLength(b.AsSpan(0, n));
                    Assert.Fail($"{name} differs at offset {at + i}: source 0x{a[i]:X2}, replica 0x{b[i]:X2}");
                }
            }
        }
    }

    /// <summary>Asserts the replica returns the same records as the source, from <paramref name="from"/> on.</summary>
    public static long AssertSameRecords(string source, string replica, long from = 0)
    {
        using var qa = new MmapQueue(source);
        using var qb = new MmapQueue(replica);
        Assert.Equal(qa.NextSequence, qb.NextSequence);
        using var ra = qa.OpenReader(from);
        using var rb = qb.OpenReader(from);
        long n = 0;
        while (ra.TryRead(out ReadOnlySpan<byte> pa))
        {
            Assert.True(rb.TryRead(out ReadOnlySpan<byte> pb), $"replica ends before record {ra.NextSequence - 1}");
            Assert.True(pa.SequenceEqual(pb), $"record {ra.NextSequence - 1} differs");
            n++;
        }
        Assert.False(rb.TryRead(out _));
        return n;
    }
}

/// <summary>IProgress that reports on the exporter's thread (Progress&lt;T&gt; posts to the thread pool, too late for asserts).</summary>
internal sealed class SyncProgress(Action<ShippingProgress> report) : IProgress<ShippingProgress>
{
    public void Report(ShippingProgress value) => report(value);
}
