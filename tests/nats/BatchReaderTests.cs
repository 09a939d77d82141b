using System.Buffers.Binary;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using MmapQueues.Nats;

namespace MmapQueues.Tests.Nats;

public class BatchReaderTests
{
    private static byte[] Batch(long first, params (uint Gap, byte[] Payload)[] records)
    {
        var body = new List<byte>(new byte[NatsBatch.HeaderSize]);
        foreach ((uint gap, byte[] payload) in records)
        {
            var h = new byte[NatsBatch.RecordHeaderSize];
            BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)payload.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), gap);
            body.AddRange(h);
            body.AddRange(payload);
        }
        byte[] b = body.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(b, NatsBatch.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)records.Length);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(8), first);
        return b;
    }

    [Fact]
    public void ReadsRecordsWithTheirSequencesAcrossGaps()
    {
        byte[] b = Batch(100, (0, [1, 2]), (0, []), (5, [3]));
        var reader = new NatsBatchReader(b);
        Assert.Equal(3, reader.Count);
        var sequences = new List<long>();
        var payloads = new List<string>();
        while (reader.TryRead(out long seq, out ReadOnlySpan<byte> payload))
        {
            sequences.Add(seq);
            payloads.Add(Convert.ToHexString(payload));
        }
        Assert.Equal([100L, 101L, 107L], sequences);
        Assert.Equal(["0102", "", "03"], payloads);
    }

    [Theory]
    [InlineData("short", "expected a 16-byte batch header, found 3 bytes")]
    [InlineData("magic", "expected magic 0x3142514D")]
    [InlineData("count", "at offset 4: expected a record count from 1 to")]
    [InlineData("length", "expected a payload length of at most 2 (record 0 of 1), found 1000")]
    [InlineData("trailing", "expected the end of the batch after 1 records, found 1 more bytes")]
    public void RejectsAHostileBodyNamingOffsetExpectedAndFound(string damage, string message)
    {
        byte[] b = Batch(0, (0, [1, 2]));
        switch (damage)
        {
            case "short": b = b[..3]; break;
            case "magic": b[0] ^= 0xFF; break;
            case "count": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 1_000_000); break;
            case "length": BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(NatsBatch.HeaderSize), 1000); break;
            case "trailing": b = [.. b, 9]; break;
        }
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            var reader = new NatsBatchReader(b);
            while (reader.TryRead(out _, out _)) { }
        });
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("orders.>", "orders.eu.new", true)]
    [InlineData("orders.*", "orders.eu", true)]
    [InlineData("orders.*", "orders.eu.new", false)]
    [InlineData("orders", "orders", true)]
    [InlineData("orders.>", "orders", false)]
    public void StreamSubjectsMatchWithNatsWildcards(string pattern, string subject, bool matches) =>
        Assert.Equal(matches, NatsForwarder.SubjectMatches(pattern, subject));

    [Fact]
    public void EveryForwarderEventIdIsUniqueInItsRangeAndListedInLoggingDoc() =>
        LoggingDoc.AssertEventIdsUniqueInRangeAndListed(typeof(NatsForwarder).Assembly.GetType("MmapQueues.Nats.Log")!, 1060, 1069);
}
