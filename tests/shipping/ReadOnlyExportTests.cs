using System.Buffers.Binary;
using System.Net.Sockets;
using MmapQueues.Shipping;

namespace MmapQueues.Tests.Shipping;

/// <summary>Export from a read-only queue (a reader process's view): durable records only, as the segment headers prove them.</summary>
public sealed class ReadOnlyExportTests
{
    private static byte[] Payload(long sequence)
    {
        var b = new byte[8 + (int)(sequence % 40)];
        BinaryPrimitives.WriteInt64LittleEndian(b, sequence);
        b.AsSpan(8).Fill((byte)sequence);
        return b;
    }

    private static async Task<long> Session(MmapQueue source, string replica, ExportOptions options)
    {
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(replica, r);
            long sent = await new QueueExporter(source, options).ExportAsync(s);
            Assert.Equal(sent, await received);
            return sent;
        }
    }

    [Fact]
    public async Task AReadOnlyQueueShipsOnlyRecordsTheWriterFlushedAndTheRestOnceTheWriterMadeThemDurable()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        var writer = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10, FlushMode = FlushMode.Async });
        long n = 0;
        while (writer.Segments.Length < 3) writer.Enqueue(Payload(n++));
        writer.Flush(); // the sealed segments' watermarks are exact; the active one's moves every 1 MiB: not yet
        long activeBase = writer.Segments[^1].BaseSequence;
        for (int i = 0; i < 10; i++) writer.Enqueue(Payload(n++)); // published, never flushed
        using var readOnly = new MmapQueue(source, new MmapQueueOptions { ReadOnly = true });
        Assert.Equal(n, readOnly.NextSequence); // a reader sees them all

        var options = new ExportOptions { ConsumerName = "ship" };
        Assert.Equal(activeBase, await Session(readOnly, replica, options)); // the exporter ships what the headers prove durable
        Assert.Equal(activeBase, readOnly.Consumers["ship"]);                // and the consumer commits at the replica's ACK

        writer.Dispose(); // flushes and stores the last segment's exact watermark
        Assert.Equal(n, await Session(readOnly, replica, options)); // resumes where the replica is
        Assert.Equal(n, readOnly.Consumers["ship"]);
        readOnly.Dispose();

        using var copy = new MmapQueue(replica);
        using var reader = copy.OpenReader(0);
        for (long s = 0; s < n; s++)
        {
            Assert.True(reader.TryRead(out ReadOnlySpan<byte> payload), $"the replica ends before record {s}");
            Assert.True(payload.SequenceEqual(Payload(s)), $"record {s} of the replica differs from the source's");
        }
        Assert.False(reader.TryRead(out _));
    }

    [Fact]
    public async Task AWatermarkThatClaimsAnotherRecordCountThanTheSegmentHoldsIsReportedAsCorruptionByTheReadOnlyExporter()
    {
        using var dir = new TempDir();
        string source = dir.Sub("source"), replica = dir.Sub("replica");
        using (var writer = new MmapQueue(source, new MmapQueueOptions { SegmentSizeBytes = 64 << 10, FlushMode = FlushMode.Async }))
        {
            long n = 0;
            while (writer.Segments.Length < 2) writer.Enqueue(Payload(n++));
        }
        string first = Directory.GetFiles(source, "*.seg").Order(StringComparer.Ordinal).First();
        using (FileStream f = File.Open(first, FileMode.Open, FileAccess.ReadWrite))
        {
            // The sealed segment's v2 watermark word (durableEnd | durableRecords << 32): one record more than it holds.
            var word = new byte[8];
            f.Position = Format.SegmentLayout.WatermarkOffset;
            f.ReadExactly(word);
            BinaryPrimitives.WriteUInt64LittleEndian(word, BinaryPrimitives.ReadUInt64LittleEndian(word) + (1UL << 32));
            f.Position = Format.SegmentLayout.WatermarkOffset;
            f.Write(word);
        }
        using var readOnly = new MmapQueue(source, new MmapQueueOptions { ReadOnly = true });
        (Socket s, Socket r) = Loopback.Pair();
        using (s)
        using (r)
        {
            Task<long> received = Loopback.Receive(replica, r);
            var e = await Assert.ThrowsAsync<QueueCorruptedException>(() => new QueueExporter(readOnly).ExportAsync(s));
            Assert.Equal(Path.GetFileName(first), Path.GetFileName(e.FilePath));
            Assert.Equal(Format.SegmentLayout.WatermarkOffset, e.Offset);
            Assert.Contains("records before it", e.Message);
            await Assert.ThrowsAnyAsync<IOException>(() => received); // the session was aborted: the replica keeps nothing of it
        }
    }
}
