using System.Net;
using System.Net.Sockets;
using MmapQueues.Shipping;
using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

/// <summary><c>mmapq export --follow --consumer NAME</c> as a sidecar: the exporter on a read-only queue in this process, the writer in another.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReadOnlyExportTests
{
    private sealed class Reports : IProgress<ShippingProgress>
    {
        private readonly List<ShippingProgress> _all = [];
        public void Report(ShippingProgress value) { lock (_all) _all.Add(value); }
        public ShippingProgress[] All { get { lock (_all) return [.. _all]; } }
        public long Acked => All is { Length: > 0 } a ? a[^1].DurableSequence : 0;
    }

    private static async Task Until(Func<bool> condition, Task<long> export, string what)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (!condition())
        {
            Assert.False(export.IsCompleted, $"the export ended while waiting for {what}: {export.Exception}");
            await Task.Delay(10, timeout.Token);
        }
    }

    [Fact]
    public async Task AFollowingExporterOnAReadOnlyQueueShipsEveryFlushedRecordOfAWriterProcessThatRollsAndRecycles()
    {
        using var dir = new TempDir();
        using var replicaDir = new TempDir();
        const long count = 20_000;
        // 16 KiB segments (~400 records), a 10 ms pause every 100 records, a flush every 20 ms, recycling on, a consumer
        // "drain" committing behind the writer: segments are freed (recycled) behind both consumers while the exporter runs.
        using var writer = ChildProcess.Start("writer", dir.Path, (16 * 1024).ToString(), count.ToString(), "10", "20");
        writer.Expect("READY");
        using var queue = new MmapQueue(dir.Path, new MmapQueueOptions { ReadOnly = true });
        var reports = new Reports();
        var options = new ExportOptions { Follow = true, ConsumerName = "ship", Progress = reports };

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        sender.Connect(listener.LocalEndPoint!);
        using Socket receiving = listener.Accept();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        Task<long> received = new QueueReceiver(replicaDir.Path).ReceiveAsync(receiving, progress: null, cancel.Token);
        Task<long> export = new QueueExporter(queue, options).ExportAsync(sender, 0, cancel.Token);
        // Registered before the writer goes: from then on retention keeps what the exporter has not shipped.
        await Until(() => queue.Consumers.ContainsKey("ship"), export, "the consumer's registration");
        writer.Send("go");

        string[] done = writer.ReadLine().Split(' ');
        Assert.Equal("DONE", done[0]);
        // The writer stays open: its last segment's records are flushed but the header watermark of an active segment
        // moves only every 1 MiB, so a reader process cannot know them durable yet. Everything before it is.
        long lastBase = QueueDirectory.ListSegments(dir.Path)[^1].Base;
        Assert.True(lastBase < count, $"the last segment starts at {lastBase}, not before the end {count}: nothing unproven to hold back");
        await Until(() => reports.Acked == lastBase, export, $"the acknowledgement of {lastBase}");
        Assert.Equal(lastBase, queue.Consumers["ship"]); // committed at the acknowledgement, through the shared cursors file
        writer.Send("drain"); // the writer's retention now frees (recycles: RecycleSegments is on) what both consumers passed
        string first = writer.ReadLine();
        Assert.True(first.StartsWith("FIRST ", StringComparison.Ordinal) && long.Parse(first[6..]) > 0,
            $"the writer freed no segment behind the exporter's commits ({first}; {string.Join(' ', done)})");
        await Task.Delay(300);
        Assert.All(reports.All, p => Assert.True(p.SentSequence <= lastBase, $"sent up to {p.SentSequence}, past the durable watermark {lastBase}"));

        writer.Finish(); // Dispose: the writer flushes and stores the last segment's exact watermark
        await Until(() => reports.Acked == count, export, $"the acknowledgement of {count}");
        Assert.Equal(count, queue.Consumers["ship"]);
        ShippingProgress[] all = reports.All;
        for (int i = 1; i < all.Length; i++)
            Assert.True(all[i].DurableSequence >= all[i - 1].DurableSequence, "the consumer's acknowledged position moved back");
        Assert.True(all.Select(p => p.DurableSequence).Distinct().Count() > 3, "the consumer's commits did not advance step by step while the writer wrote");

        queue.Dispose(); // ends the follow session: END, final ACK
        Assert.Equal(count, await export);
        Assert.Equal(count, await received);
        using var replica = new MmapQueue(replicaDir.Path);
        using var reader = replica.OpenReader(0);
        for (long s = 0; s < count; s++)
        {
            Assert.True(reader.TryRead(out ReadOnlySpan<byte> payload), $"the replica ends before record {s}");
            Assert.True(WriterPayload.Matches(payload, s), $"record {s} of the replica is not the writer's record {s}");
        }
        Assert.False(reader.TryRead(out _));
    }
}
