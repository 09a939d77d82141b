using System.Diagnostics.Metrics;
using MmapQueues.Format;

namespace MmapQueues.Tests.App;

/// <summary>Collects the MmapQueue instruments of one queue (by its destination tag) with a MeterListener.</summary>
internal sealed class QueueMeterProbe : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _path;
    private readonly Dictionary<string, long> _last = [];
    private readonly Dictionary<string, List<(double Value, Dictionary<string, object?> Tags)>> _recorded = [];

    public QueueMeterProbe(string path)
    {
        _path = path;
        _listener.InstrumentPublished = (i, l) => { if (i.Meter.Name == "MmapQueue") l.EnableMeasurementEvents(i); };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i.Name, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i.Name, v, tags));
        _listener.Start();
    }

    private void Record(string name, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var dict = new Dictionary<string, object?>();
        foreach (var t in tags) dict[t.Key] = t.Value;
        if (!Equals(dict.GetValueOrDefault("messaging.destination.name"), _path)) return; // another test's queue
        lock (_recorded)
        {
            if (!_recorded.TryGetValue(name, out var list)) _recorded[name] = list = [];
            list.Add((value, dict));
            _last[name] = (long)value;
        }
    }

    /// <summary>Runs the observable callbacks and returns the value each instrument reported for this queue.</summary>
    public long Observe(string name)
    {
        lock (_recorded) _recorded.Remove(name);
        _listener.RecordObservableInstruments();
        lock (_recorded)
        {
            Assert.True(_recorded.TryGetValue(name, out var list), $"instrument {name} reported nothing for {_path}");
            return (long)Assert.Single(list).Value;
        }
    }

    public List<(double Value, Dictionary<string, object?> Tags)> Recorded(string name)
    {
        lock (_recorded) return _recorded.TryGetValue(name, out var list) ? [.. list] : [];
    }

    public void Dispose() => _listener.Dispose();
}

public class MetricsTests
{
    private static MmapQueueOptions Small(FlushMode mode = FlushMode.Async) => new() { SegmentSizeBytes = 64 * 1024, FlushMode = mode, Preheat = false };

    [Fact]
    public void EnqueuedRecordsBytesSegmentsAndDiskMatchWhatWasAppended()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small());
        using var probe = new QueueMeterProbe(q.Path);
        long frameBytes = 0;
        for (int i = 0; i < 3000; i++)
        {
            int length = i % 97;
            q.Enqueue(new byte[length]);
            frameBytes += SegmentLayout.FrameLength(length);
        }
        Assert.True(q.Segments.Length > 2, "the records should span several segments, so rolls are counted");
        Assert.Equal(3000, probe.Observe("messaging.client.sent.messages"));
        Assert.Equal(frameBytes, probe.Observe("mmapq.enqueued.bytes"));
        Assert.Equal(q.Segments.Length, probe.Observe("mmapq.segments"));
        Assert.Equal(q.Segments.Length * 64L * 1024, probe.Observe("mmapq.disk.bytes"));
    }

    [Fact]
    public void CountersStartFromTheOpenPositionAfterAReopen()
    {
        using var dir = new TempDir();
        using (var q = new MmapQueue(dir.Path, Small()))
            for (int i = 0; i < 10; i++) q.Enqueue("before"u8);
        using var reopened = new MmapQueue(dir.Path, Small());
        using var probe = new QueueMeterProbe(reopened.Path);
        reopened.Enqueue("after"u8);
        Assert.Equal(1, probe.Observe("messaging.client.sent.messages"));
        Assert.Equal(SegmentLayout.FrameLength(5), probe.Observe("mmapq.enqueued.bytes"));
    }

    [Fact]
    public void DurableLagIsAppendedMinusDurableAndFallsToZeroOnFlush()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small(FlushMode.Async));
        using var probe = new QueueMeterProbe(q.Path);
        Assert.Equal(0, probe.Observe("mmapq.durable.lag"));
        for (int i = 0; i < 25; i++) q.Enqueue("x"u8);
        Assert.Equal(25, probe.Observe("mmapq.durable.lag"));
        q.Flush();
        Assert.Equal(0, probe.Observe("mmapq.durable.lag"));
    }

    [Fact]
    public void EachFlushRecordsOneDurationInSeconds()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small(FlushMode.Async));
        using var probe = new QueueMeterProbe(q.Path);
        for (int i = 0; i < 3; i++)
        {
            q.Enqueue("x"u8);
            q.Flush();
        }
        q.Flush(); // nothing new: no msync, nothing recorded
        var durations = probe.Recorded("mmapq.flush.duration");
        Assert.Equal(3, durations.Count);
        Assert.All(durations, d => Assert.InRange(d.Value, 0, 60));
    }

    [Fact]
    public async Task ExportsAndConsumerLagAreReportedWithTheirTagsByTheRealOperations()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Small(), null, null);
        using var probe = new QueueMeterProbe(q.Path);
        for (int i = 0; i < 10; i++) q.Enqueue("x"u8);
        long shippedBytes = 0;
        string peer;
        (System.Net.Sockets.Socket s, System.Net.Sockets.Socket r) = MmapQueues.Tests.Shipping.Loopback.Pair();
        using (s)
        using (r)
        {
            peer = s.RemoteEndPoint!.ToString()!;
            using var replicaDir = new TempDir();
            Task<long> received = MmapQueues.Tests.Shipping.Loopback.Receive(replicaDir.Path, r);
            var options = new MmapQueues.Shipping.ExportOptions { Progress = new MmapQueues.Tests.Shipping.SyncProgress(p => shippedBytes = p.Bytes) };
            Assert.Equal(10, await q.ExportToAsync(s, 0, options)); // a real export records the counter
            Assert.Equal(10, await received.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        CommitAfterReading(q, "billing", 7);
        CommitAfterReading(q, "audit", 10);

        var exported = probe.Recorded("mmapq.exported.bytes");
        Assert.True(shippedBytes > 0, "the export shipped nothing");
        Assert.Equal(shippedBytes, exported.Sum(m => m.Value));
        Assert.All(exported, m => Assert.Equal(peer, m.Tags["server.address"]));

        probe.Observe("mmapq.durable.lag"); // triggers every observable; consumer lag is read below
        var lags = probe.Recorded("mmapq.consumer.lag").ToDictionary(m => (string)m.Tags["messaging.consumer.group.name"]!, m => m.Value);
        Assert.Equal(3, lags["billing"]);
        Assert.Equal(0, lags["audit"]);
    }

    private static void CommitAfterReading(MmapQueue q, string consumer, int records)
    {
        using QueueReader reader = q.OpenReader(consumer);
        for (int i = 0; i < records; i++) Assert.True(reader.TryRead(out _));
        reader.Commit();
    }

    [Fact]
    public void DropOldestRecordsTheRecordsItDroppedWithItsReason()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        MmapQueueOptions options = Small();
        options.MaxQueueSizeBytes = 2 * options.SegmentSizeBytes;
        options.FullPolicy = QueueFullPolicy.DropOldest;
        using var q = new MmapQueue(dir.Path, options, logs, null);
        using var probe = new QueueMeterProbe(q.Path);
        for (int i = 0; i < 200; i++) q.Enqueue(new byte[1000]); // about 65 records a segment: the oldest must go
        Assert.True(q.FirstSequence > 0, "DropOldest dropped nothing");

        var drops = probe.Recorded("mmapq.dropped.records");
        Assert.NotEmpty(drops);
        Assert.Equal(q.DroppedRecords, drops.Sum(m => m.Value));
        Assert.Equal(q.FirstSequence, q.DroppedRecords); // nobody read anything: every record before the first kept was dropped
        Assert.All(drops, m => Assert.Equal("MaxQueueSizeBytes (FullPolicy DropOldest)", m.Tags["mmapq.drop.reason"]));
        Assert.Equal(drops.Count, logs.Count(1030));
    }

    [Fact]
    public void ObservableInstrumentsReportNothingAfterDispose()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, Small());
        using var probe = new QueueMeterProbe(q.Path);
        q.Enqueue("x"u8);
        q.Dispose();
        probe.Recorded("mmapq.segments").Clear();
        Assert.Throws<Xunit.Sdk.TrueException>(() => probe.Observe("mmapq.segments"));
    }

    [Fact]
    public void EnqueueAllocatesNothingWhileAListenerIsAttached()
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = 1 << 20, FlushMode = FlushMode.Async, Preheat = false });
        using var probe = new QueueMeterProbe(q.Path);
        byte[] payload = new byte[32];
        q.Enqueue(payload); // warm up (JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) q.Enqueue(payload);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
