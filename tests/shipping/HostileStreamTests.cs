using System.Buffers.Binary;
using MmapQueues.Format;
using MmapQueues.Shipping;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Shipping;

/// <summary>
/// The receiver against hand-built streams: a valid one made from a source queue's files, then the same
/// with one thing wrong. Each bad one is refused with a clear error, and the replica opens with exactly
/// the records before the bad bytes.
/// </summary>
public sealed class HostileStreamTests : IDisposable
{
    private const long SegmentSize = 64 << 10;
    private const int Records = 60;
    private readonly TempDir _dir = new();
    private readonly string _source, _replica;
    private readonly List<(long Base, byte[] Bytes, List<int> Frames, int End)> _segments = new();
    private readonly Guid _queueId;

    public HostileStreamTests()
    {
        _source = _dir.Sub("source");
        _replica = _dir.Sub("replica");
        using (var q = new MmapQueue(_source, new MmapQueueOptions { SegmentSizeBytes = SegmentSize }))
            for (int i = 0; i < Records; i++) q.Enqueue(Enumerable.Range(0, 2000 + i).Select(x => (byte)(x * 7 + i)).ToArray());
        _queueId = QueueDirectory.ReadMeta(Path.Combine(_source, "queue.meta")).QueueId;
        foreach ((long b, string path) in QueueDirectory.ListSegments(_source))
        {
            byte[] bytes = File.ReadAllBytes(path);
            var frames = new List<int>();
            var cursor = new FrameCursor(bytes, SegmentLayout.FirstRecordOffset, b);
            while (cursor.Read(verifyCrc: true) is FrameKind.Payload or FrameKind.Aborted)
            {
                frames.Add(cursor.Offset);
                cursor.Advance();
            }
            Assert.True(cursor.Kind is not FrameKind.Bad, $"{path} at {cursor.Offset}: {cursor.Problem}");
            if (cursor.Kind == FrameKind.EndOfSegment) frames.Add(cursor.Offset);
            _segments.Add((b, bytes, frames, cursor.End));
        }
        Assert.True(_segments.Count >= 2, "the script should cross a segment boundary");
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>HELLO, then each segment as two chunks, then END: what ExportTo sends to an empty replica.</summary>
    private byte[] ValidScript(Func<int, byte[], byte[]>? editChunkHeader = null)
    {
        var s = new MemoryStream();
        var hello = new byte[WireProtocol.HelloSize];
        WireProtocol.WriteHello(hello, new WireProtocol.Hello(SegmentSize, _queueId, 0), WireProtocol.Auth.None, new byte[WireProtocol.NonceSize]);
        s.Write(hello);
        int chunk = 0;
        foreach (var seg in _segments)
        {
            int mid = SegmentLayout.FirstRecordOffset + (seg.End - SegmentLayout.FirstRecordOffset) / 2 + 3; // a cut inside a record
            foreach ((int from, int to) in new[] { (SegmentLayout.FirstRecordOffset, mid), (mid, seg.End) })
            {
                var h = new byte[WireProtocol.HeaderSize];
                WireProtocol.WriteHeader(h, WireProtocol.Kind.Chunk, to - from, seg.Base, from);
                s.Write(editChunkHeader?.Invoke(chunk++, h) ?? h);
                s.Write(seg.Bytes.AsSpan(from, to - from));
            }
        }
        var end = new byte[WireProtocol.HeaderSize];
        WireProtocol.WriteHeader(end, WireProtocol.Kind.End, 0, Records, 0);
        s.Write(end);
        return s.ToArray();
    }

    /// <summary>Where record <paramref name="sequence"/> sits in the script (its frame's first byte).</summary>
    private int ScriptOffsetOfRecord(int sequence)
    {
        int at = WireProtocol.HelloSize, seq = 0;
        foreach (var seg in _segments)
        {
            int mid = SegmentLayout.FirstRecordOffset + (seg.End - SegmentLayout.FirstRecordOffset) / 2 + 3;
            foreach (int frame in seg.Frames)
            {
                bool isMarker = BinaryPrimitives.ReadUInt32LittleEndian(seg.Bytes.AsSpan(frame)) == SegmentLayout.EndOfSegmentWord;
                if (!isMarker && seq++ == sequence)
                    return at + WireProtocol.HeaderSize + (frame - SegmentLayout.FirstRecordOffset) + (frame >= mid ? WireProtocol.HeaderSize : 0);
            }
            at += 2 * WireProtocol.HeaderSize + seg.End - SegmentLayout.FirstRecordOffset;
        }
        throw new ArgumentOutOfRangeException(nameof(sequence));
    }

    private (Exception? Error, byte[] Answer) Receive(byte[] script)
    {
        var stream = new ScriptedStream(script);
        Exception? error = Record.Exception(() => new QueueReceiver(_replica).ReceiveAsync(stream).GetAwaiter().GetResult());
        return (error, stream.Written);
    }

    private void AssertReplicaHoldsExactlyTheFirst(int count)
    {
        using var q = new MmapQueue(_replica);
        Assert.Equal(count, q.NextSequence);
        using var src = new MmapQueue(_source);
        using var a = src.OpenReader();
        using var b = q.OpenReader();
        for (int i = 0; i < count; i++)
        {
            Assert.True(a.TryRead(out ReadOnlySpan<byte> pa));
            Assert.True(b.TryRead(out ReadOnlySpan<byte> pb));
            Assert.True(pa.SequenceEqual(pb), $"record {i} differs");
        }
        Assert.False(b.TryRead(out _));
    }

    /// <summary>The peer got ERROR with <paramref name="code"/> and nothing more: no position, no path.</summary>
    private void AssertToldThePeer(byte[] answer, string code, params string[] notLeaked)
    {
        // RESUME, possibly ACKs, then ERROR with the code.
        string all = System.Text.Encoding.ASCII.GetString(answer);
        Assert.Contains(ShippingErrorCode.Text(code), all);
        Assert.DoesNotContain(_replica, all);
        foreach (string secret in notLeaked) Assert.DoesNotContain(secret, all);
    }

    [Fact]
    public void ValidScriptIsAcceptedWhole()
    {
        (Exception? error, _) = Receive(ValidScript());
        Assert.Null(error);
        AssertReplicaHoldsExactlyTheFirst(Records);
        foreach (var seg in _segments)
            Assert.Equal(seg.Bytes, File.ReadAllBytes(SegmentNames.For(_replica, seg.Base)));
    }

    [Fact]
    public void FlippedPayloadByteIsRefusedAndEarlierRecordsSurvive()
    {
        byte[] script = ValidScript();
        const int victim = 37; // in the second segment
        script[ScriptOffsetOfRecord(victim) + SegmentLayout.RecordHeaderSize + 100] ^= 0x01;
        (Exception? error, byte[] answer) = Receive(script);
        var e = Assert.IsType<ShippingProtocolException>(error);
        Assert.Contains($"Refused record {victim}", e.Message);
        Assert.Contains("CRC32C", e.Message);
        AssertToldThePeer(answer, ShippingErrorCode.Record, $"Refused record {victim}", "CRC32C");
        AssertReplicaHoldsExactlyTheFirst(victim);
    }

    [Fact]
    public void TruncatedChunkIsRefusedAndEarlierRecordsSurvive()
    {
        byte[] script = ValidScript();
        const int victim = 20;
        int cut = ScriptOffsetOfRecord(victim) + 1000; // in the middle of record 20's payload
        (Exception? error, _) = Receive(script[..cut]);
        var e = Assert.IsType<ShippingProtocolException>(error);
        Assert.Contains("Truncated CHUNK", e.Message);
        AssertReplicaHoldsExactlyTheFirst(victim);
    }

    [Fact]
    public void LyingChunkLengthIsRefusedBeforeItSizesAnything()
    {
        byte[] script = ValidScript((i, h) =>
        {
            if (i == 1) BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), 0x7FFF_FFF0);
            return h;
        });
        (Exception? error, byte[] answer) = Receive(script);
        var e = Assert.IsType<ShippingProtocolException>(error);
        Assert.Contains($"expected a length from 1 to {SegmentSize - 64}, found {0x7FFF_FFF0}", e.Message);
        AssertToldThePeer(answer, ShippingErrorCode.Protocol, "2147483632");
        // The first chunk ended inside a record: only the records wholly in it survive.
        var first = _segments[0];
        int mid = SegmentLayout.FirstRecordOffset + (first.End - SegmentLayout.FirstRecordOffset) / 2 + 3;
        AssertReplicaHoldsExactlyTheFirst(first.Frames.Count(f => NextFrameEnd(first, f) <= mid));
    }

    private static int NextFrameEnd((long Base, byte[] Bytes, List<int> Frames, int End) seg, int frame)
    {
        Frames.ClassifyWord(BinaryPrimitives.ReadUInt32LittleEndian(seg.Bytes.AsSpan(frame)), out int length);
        return frame + SegmentLayout.FrameLength(length); // the end marker has length 0: a bare frame header
    }

    [Fact]
    public void LyingRecordLengthIsRefusedAndEarlierRecordsSurvive()
    {
        byte[] script = ValidScript();
        const int victim = 5;
        int at = ScriptOffsetOfRecord(victim);
        BinaryPrimitives.WriteUInt32LittleEndian(script.AsSpan(at), SegmentLayout.PublishedFlag | SegmentLayout.LengthMask);
        (Exception? error, _) = Receive(script);
        var e = Assert.IsType<ShippingProtocolException>(error);
        Assert.Contains("a record that ends inside the segment", e.Message);
        Assert.Contains($"Refused record {victim}", e.Message);
        AssertReplicaHoldsExactlyTheFirst(victim);
    }

    [Theory]
    [InlineData(8, 2, "protocol version 3, found 2", ShippingErrorCode.Version)]
    [InlineData(10, 1, "segment format version 2, found 1", ShippingErrorCode.Version)]
    [InlineData(0, 0x4E, "magic 0x3150494853514D4D", ShippingErrorCode.Protocol)]
    public void WrongVersionInHelloIsRefusedAndNothingIsCreated(int offset, byte value, string expected, string code)
    {
        byte[] script = ValidScript();
        script[offset] = value;
        (Exception? error, byte[] answer) = Receive(script);
        var e = Assert.IsType<ShippingProtocolException>(error);
        Assert.Contains($"expected {expected}", e.Message);
        AssertToldThePeer(answer, code);
        Assert.False(File.Exists(Path.Combine(_replica, "queue.meta")), "a refused HELLO must not create a replica");
    }

    [Fact]
    public void ReplicaOfAnotherQueueIsRefused()
    {
        Assert.Null(Receive(ValidScript()).Error);
        using var dir = new TempDir();
        using var other = new MmapQueue(dir.Sub("other"), new MmapQueueOptions { SegmentSizeBytes = SegmentSize });
        other.Enqueue("x"u8);
        (System.Net.Sockets.Socket s, System.Net.Sockets.Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(_replica, r);
            var e = Assert.IsType<ShippingProtocolException>(Record.Exception(() => other.ExportTo(s)));
            Assert.Contains("refused", e.Message);
            var re = Assert.IsType<ShippingProtocolException>(Record.Exception(() => received.GetAwaiter().GetResult()));
            Assert.Contains($"is a copy of queue {_queueId}", re.Message);
        }
        AssertReplicaHoldsExactlyTheFirst(Records);
    }
}

/// <summary>A duplex stream for tests: reads come from a script, writes are collected.</summary>
internal sealed class ScriptedStream(byte[] script) : DuplexTestStream
{
    private readonly MemoryStream _in = new(script);
    private readonly MemoryStream _out = new();

    public byte[] Written => _out.ToArray();
    public override int Read(Span<byte> buffer) => _in.Read(buffer);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(_in.Read(buffer.Span));
    public override void Write(ReadOnlySpan<byte> buffer) => _out.Write(buffer);
}

