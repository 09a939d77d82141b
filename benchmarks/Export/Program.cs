// Export over loopback (issue 4): the same 1 GiB of segments sent four ways, GB/s and sender CPU s/GB.
//   dotnet run --project benchmarks/Export -c Release [-- <GiB> <rounds> [auth]]
// With "auth": only plain, shared-secret and mutual-TLS shipping end to end into a replica (AuthenticatedRuns.cs).
// Every method sends exactly the same bytes (each segment's records and end marker) to a sink thread in
// this process that reads and discards them; ExportTo's sink also speaks the protocol (handshake, ACK).
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MmapQueues;
using MmapQueues.Benchmarks.Export;
using MmapQueues.Format;
using MmapQueues.Shipping;
using MmapQueues.Storage;

double gib = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 1.0;
int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
bool authOnly = args.Length > 2 && args[2] == "auth";
string root = Path.Combine(Path.GetTempPath(), "mmapq-bench-export");
if (Directory.Exists(root)) Directory.Delete(root, true);
Directory.CreateDirectory(root);
try
{
    using var queue = new MmapQueue(Path.Combine(root, "source"), new MmapQueueOptions { SegmentSizeBytes = 64L << 20, FlushMode = FlushMode.Async });
    Fill(queue, (long)(gib * (1L << 30)));
    queue.Flush();
    if (authOnly)
    {
        var all = Ranges(queue);
        Console.WriteLine($"source: {all.Count} segments of 64 MiB, {queue.NextSequence:N0} records; machine: {Environment.ProcessorCount} CPUs, .NET {Environment.Version}");
        AuthenticatedRuns.Run(queue, root, all.Sum(r => (long)r.Count), rounds);
        return;
    }
    var ranges = Ranges(queue);
    long total = ranges.Sum(r => (long)r.Count);
    Console.WriteLine($"source: {ranges.Count} segments of 64 MiB, {queue.NextSequence:N0} records, {total / 1e9:F3} GB of segment bytes to send");
    Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");

    var methods = new (string Name, Action<Socket> Send, bool Protocol)[]
    {
        ("ExportTo(Socket) (sendfile)", s => queue.ExportTo(s), true),
        ("raw sendfile loop", s => RawSendfile(s, ranges), false),
        ("read+write copy loop", s => ReadWrite(s, ranges), false),
        ("mmap+write (Send(span))", s => MmapWrite(s, queue, ranges), false),
        ("ExportTo(Stream) (mmap+write)", s => { using var ns = new NetworkStream(s, ownsSocket: false); queue.ExportTo(ns); }, true),
    };
    var results = methods.ToDictionary(m => m.Name, _ => new List<(double Seconds, double SenderCpu, double SinkCpu)>());
    for (int round = 0; round < rounds; round++)
        foreach (var m in round % 2 == 0 ? methods : methods.Reverse())
            results[m.Name].Add(Run(m.Send, m.Protocol, total, queue));

    Console.WriteLine();
    Console.WriteLine($"| method | GB/s (median of {rounds}) | sender CPU s/GB | sink CPU s/GB |");
    Console.WriteLine("|---|---|---|---|");
    foreach (var m in methods)
    {
        var r = results[m.Name];
        double Median(Func<(double Seconds, double SenderCpu, double SinkCpu), double> f) => r.Select(f).Order().ElementAt(r.Count / 2);
        double gb = total / 1e9;
        Console.WriteLine($"| {m.Name} | {gb / Median(x => x.Seconds):F2} (min {gb / r.Max(x => x.Seconds):F2}, max {gb / r.Min(x => x.Seconds):F2}) | " +
                          $"{Median(x => x.SenderCpu) / gb:F3} | {Median(x => x.SinkCpu) / gb:F3} |");
    }

    // End to end into a real replica (CRC check, copy into the mapping, msync), once.
    string replica = Path.Combine(root, "replica");
    var sw = Stopwatch.StartNew();
    (Socket a, Socket b) = Pair();
    using (a)
    using (b)
    {
        Task<long> rx = new QueueReceiver(replica, new ReceiverOptions { QueueOptions = new MmapQueueOptions { FlushMode = FlushMode.Async } }).ReceiveAsync(b);
        var cpu0 = ThreadCpu.Now();
        queue.ExportTo(a);
        var cpu1 = ThreadCpu.Now();
        rx.GetAwaiter().GetResult();
        Console.WriteLine();
        Console.WriteLine($"end to end into a replica (CRC check, copy, msync on the receiver): {total / 1e9 / sw.Elapsed.TotalSeconds:F2} GB/s, " +
                          $"sender CPU {(cpu1.User + cpu1.Sys - cpu0.User - cpu0.Sys) / (total / 1e9):F3} s/GB");
    }
}
finally
{
    Directory.Delete(root, true);
}

static (double, double, double) Run(Action<Socket> send, bool protocol, long total, MmapQueue queue)
{
    (Socket a, Socket b) = Pair();
    using (a)
    using (b)
    {
        double sinkCpu = 0;
        var sink = new Thread(() =>
        {
            var c0 = ThreadCpu.Now();
            if (protocol) ProtocolSink(b, queue); else Drain(b, total);
            var c1 = ThreadCpu.Now();
            sinkCpu = c1.User + c1.Sys - c0.User - c0.Sys;
        });
        sink.Start();
        var cpu0 = ThreadCpu.Now();
        var sw = Stopwatch.StartNew();
        send(a);
        if (!protocol) sink.Join(); // the raw loops finish when the sink has every byte
        double seconds = sw.Elapsed.TotalSeconds;
        var cpu1 = ThreadCpu.Now();
        sink.Join();
        return (seconds, cpu1.User + cpu1.Sys - cpu0.User - cpu0.Sys, sinkCpu);
    }
}

static (Socket, Socket) Pair()
{
    using var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    l.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    l.Listen(1);
    var a = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    a.Connect(l.LocalEndPoint!);
    return (a, l.Accept());
}

static void Drain(Socket s, long total)
{
    var buf = new byte[1 << 20];
    while (total > 0)
    {
        int n = s.Receive(buf);
        if (n == 0) throw new IOException($"sink: stream ended {total} bytes early");
        total -= n;
    }
}

// Answers HELLO as an empty replica would, discards chunk bodies, ACKs END.
static void ProtocolSink(Socket s, MmapQueue queue)
{
    var hs = new byte[WireProtocol.HelloSize];
    ReadExactly(s, hs);
    WireProtocol.CheckPrefix(hs, WireProtocol.Message.Hello, WireProtocol.Auth.None);
    WireProtocol.Hello hello = WireProtocol.ReadHello(hs);
    var resume = new byte[WireProtocol.ResumeSize];
    WireProtocol.WriteResume(resume, new WireProtocol.Resume(hello.StartBase, hello.QueueId, hello.StartBase, SegmentLayout.FirstRecordOffset), WireProtocol.Auth.None);
    s.Send(resume);
    var h = new byte[WireProtocol.HeaderSize];
    var buf = new byte[1 << 20];
    while (true)
    {
        ReadExactly(s, h);
        WireProtocol.Header header = WireProtocol.ReadHeader(h, queue.Options.SegmentSizeBytes);
        if (header.Kind == WireProtocol.Kind.Chunk)
        {
            for (int left = header.Length; left > 0;)
            {
                int n = s.Receive(buf, 0, Math.Min(left, buf.Length), SocketFlags.None);
                if (n == 0) throw new IOException("sink: stream ended inside a chunk");
                left -= n;
            }
        }
        else if (header.Kind == WireProtocol.Kind.End)
        {
            WireProtocol.WriteHeader(h, WireProtocol.Kind.Ack, 0, header.A, 0);
            s.Send(h);
            return;
        }
    }
}

static void ReadExactly(Socket s, byte[] b)
{
    for (int at = 0; at < b.Length;)
    {
        int n = s.Receive(b, at, b.Length - at, SocketFlags.None);
        if (n == 0) throw new IOException("sink: stream ended");
        at += n;
    }
}

static void RawSendfile(Socket s, List<(string Path, int Offset, int Count)> ranges)
{
    foreach (var r in ranges)
    {
        using var f = File.OpenHandle(r.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        MmapQueues.Native.SocketSendfile.Send(s, f, r.Offset, r.Count, r.Path);
    }
}

static void ReadWrite(Socket s, List<(string Path, int Offset, int Count)> ranges)
{
    var buf = new byte[1 << 20];
    foreach (var r in ranges)
    {
        using var f = File.OpenHandle(r.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        for (long at = r.Offset, end = r.Offset + (long)r.Count; at < end;)
        {
            int n = RandomAccess.Read(f, buf.AsSpan(0, (int)Math.Min(buf.Length, end - at)), at);
            for (int sent = 0; sent < n;) sent += s.Send(buf, sent, n - sent, SocketFlags.None);
            at += n;
        }
    }
}

static void MmapWrite(Socket s, MmapQueue queue, List<(string Path, int Offset, int Count)> ranges)
{
    foreach (var r in ranges)
    {
        Segment seg = queue.Segments.First(x => x.Path == r.Path);
        seg.Acquire();
        try
        {
            ReadOnlySpan<byte> bytes = seg.Bytes.Slice(r.Offset, r.Count);
            while (!bytes.IsEmpty) bytes = bytes[s.Send(bytes)..];
        }
        finally
        {
            seg.Release();
        }
    }
}

// The byte range of each segment that ExportTo sends: records, then the end marker when there is one.
static List<(string Path, int Offset, int Count)> Ranges(MmapQueue queue)
{
    var list = new List<(string, int, int)>();
    foreach (Segment seg in queue.Segments)
    {
        seg.Acquire();
        try
        {
            int off = SegmentLayout.FirstRecordOffset;
            while (off + SegmentLayout.RecordHeaderSize <= seg.Size)
            {
                uint word = seg.ReadWord(off);
                if (word == 0) break;
                if (word == SegmentLayout.EndOfSegmentWord) { off += SegmentLayout.RecordHeaderSize; break; }
                off += SegmentLayout.FrameLength((int)(word & SegmentLayout.LengthMask));
            }
            if (off > SegmentLayout.FirstRecordOffset) list.Add((seg.Path, SegmentLayout.FirstRecordOffset, off - SegmentLayout.FirstRecordOffset));
        }
        finally
        {
            seg.Release();
        }
    }
    return list;
}

// Mixed record sizes: mostly small, some up to 256 KiB; payloads from a random buffer.
static void Fill(MmapQueue q, long bytes)
{
    var rng = new Random(5);
    var noise = new byte[4 << 20];
    rng.NextBytes(noise);
    for (long done = 0; done < bytes;)
    {
        int roll = rng.Next(100);
        int size = roll < 60 ? rng.Next(16, 257) : roll < 90 ? rng.Next(257, 4097) : rng.Next(4097, 256 << 10);
        q.Enqueue(noise.AsSpan(rng.Next(noise.Length - size), size));
        done += size + 8;
    }
}
