using System.Globalization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace MmapQueues.Tests.Nats.Harness;

/// <summary>Test records with payloads derived from their index, and a check of what a stream holds.</summary>
internal static class StreamCheck
{
    /// <summary>Payload of the i-th test record: 16 to 100 bytes, its index in the first 8.</summary>
    public static byte[] Payload(long i)
    {
        var b = new byte[16 + (int)(i * 7919 % 85)];
        BitConverter.TryWriteBytes(b, i);
        for (int k = 8; k < b.Length; k++) b[k] = (byte)(i * 31 + k);
        return b;
    }

    public static void Append(string dir, long from, long count, MmapQueueOptions? options = null)
    {
        using var q = new MmapQueue(dir, options ?? new MmapQueueOptions { SegmentSizeBytes = 16 << 20, FlushMode = FlushMode.Async });
        for (long i = from; i < from + count; i++) q.Enqueue(Payload(i));
        q.Flush();
    }

    /// <summary>
    /// Reads the whole stream with an ordered consumer and checks it holds exactly the records [0, expected) of
    /// the queue, each once, payloads equal, and (when <paramref name="inOrder"/>) in queue order; per-record or
    /// batched messages.
    /// </summary>
    public static async Task AssertHoldsExactly(string url, string stream, long expected, bool inOrder = true)
    {
        var held = new bool[expected];
        await using var nats = new NatsClient(url);
        INatsJSContext js = nats.CreateJetStreamContext();
        INatsJSStream s = await js.GetStreamAsync(stream);
        long messages = (long)s.Info.State.Messages;
        Assert.True(messages > 0 || expected == 0, $"stream {stream} is empty; expected {expected} records");
        INatsJSConsumer consumer = await js.CreateOrderedConsumerAsync(stream);
        long next = 0, seen = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await foreach (NatsJSMsg<byte[]> msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cts.Token))
        {
            seen++;
            Assert.NotNull(msg.Headers);
            string? format = msg.Headers!.TryGetValue(MmapQueues.Nats.NatsForwardHeaders.Format, out var f) ? f.ToString() : null;
            long last = long.Parse(msg.Headers[MmapQueues.Nats.NatsForwardHeaders.Sequence].ToString(), CultureInfo.InvariantCulture);
            if (format == "batch")
            {
                var reader = new MmapQueues.Nats.NatsBatchReader(msg.Data ?? []);
                while (reader.TryRead(out long sequence, out ReadOnlySpan<byte> payload))
                    Check(sequence, payload);
            }
            else Check(last, msg.Data ?? []);
            if (seen == messages) break;
        }
        Assert.Equal(expected, next);
        long missing = Array.IndexOf(held, false);
        Assert.True(missing < 0, $"record {missing} is not in the stream (a loss)");

        void Check(long sequence, ReadOnlySpan<byte> payload)
        {
            if (inOrder) Assert.True(sequence == next, $"stream message {seen}: record {sequence} where {next} was expected (a loss, a duplicate or a reorder)");
            Assert.True(sequence >= 0 && sequence < expected, $"stream message {seen}: record {sequence} is outside [0, {expected})");
            Assert.False(held[sequence], $"stream message {seen}: record {sequence} is in the stream twice (a duplicate)");
            held[sequence] = true;
            Assert.True(payload.SequenceEqual(Payload(sequence)), $"record {sequence}: payload differs");
            next++;
        }
    }

    public static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : fallback;
}
