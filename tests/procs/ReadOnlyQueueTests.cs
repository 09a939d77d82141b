using MmapQueues.Storage;

namespace MmapQueues.Tests.Procs;

/// <summary>The read-only queue (<see cref="MmapQueueOptions.ReadOnly"/>) in this process beside a writer in another one.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReadOnlyQueueTests
{
    private const long SegmentBytes = 16 * 1024; // ~400 records each: many rolls

    /// <summary>The child "writer" (COUNT records once told "go"), open and waiting.</summary>
    private static ChildProcess StartWriter(TempDir dir, string count)
    {
        var writer = ChildProcess.Start("writer", dir.Path, SegmentBytes.ToString(), count);
        writer.Expect("READY");
        return writer;
    }

    private static MmapQueue ReadOnly(TempDir dir) => new(dir.Path, new MmapQueueOptions { ReadOnly = true });

    [Fact]
    public async Task AReadOnlyQueueReadsEveryRecordInOrderWhileAWriterProcessAppendsRollsAndRecycles()
    {
        using var dir = new TempDir();
        const long count = 30_000;
        using var writer = StartWriter(dir, count.ToString());
        using var queue = ReadOnly(dir);
        using var reader = queue.OpenReader(0);
        writer.Send("go");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        long next = 0, waits = 0;
        while (next < count)
        {
            if (next % 2 == 0 && reader.TryReadBatch(out RecordBatch batch, 64))
            {
                foreach (RecordView record in batch)
                {
                    Assert.Equal(next, record.Sequence);
                    Assert.True(WriterPayload.Matches(record.Payload, next), $"record {next}: a payload that is not its own");
                    next++;
                }
                continue;
            }
            if (reader.TryRead(out ReadOnlySpan<byte> payload))
            {
                Assert.True(WriterPayload.Matches(payload, next), $"record {next}: a payload that is not its own");
                next++;
                continue;
            }
            waits++;
            Assert.True(await reader.WaitToReadAsync(timeout.Token), "the read-only queue was disposed under its reader");
        }
        string[] done = writer.ReadLine().Split(' ');
        Assert.Equal("DONE", done[0]);
        Assert.True(long.Parse(done[1]) > 0, "the writer recycled no segment: the test did not exercise recycling");
        Assert.True(long.Parse(done[2]) > 0, "retention freed nothing");
        Assert.True(waits > 0, "the reader never caught up with the writer: the test did not exercise waiting");
        Assert.False(reader.TryRead(out _));
        Assert.Equal(count, queue.NextSequence);
        writer.Finish();
    }

    [Fact]
    public async Task ReadAllAsyncAndTheChannelAdapterOfAReadOnlyQueueFollowAWriterProcess()
    {
        using var dir = new TempDir();
        const long count = 5_000;
        using var writer = StartWriter(dir, count.ToString());
        using var queue = ReadOnly(dir);
        using var all = queue.OpenReader(0);
        using var channelled = queue.OpenReader(0);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        System.Threading.Channels.ChannelReader<QueueRecord> channel = channelled.AsChannelReader(64, timeout.Token);
        writer.Send("go");
        long next = 0;
        await foreach (ReadOnlyMemory<byte> payload in all.ReadAllAsync(timeout.Token))
        {
            Assert.True(WriterPayload.Matches(payload.Span, next), $"record {next}: a payload that is not its own");
            if (++next == count) break;
        }
        for (long i = 0; i < count; i++)
        {
            QueueRecord record = await channel.ReadAsync(timeout.Token);
            Assert.Equal(i, record.Sequence);
            Assert.True(WriterPayload.Matches(record.Payload.Span, i));
        }
        Assert.StartsWith("DONE ", writer.ReadLine());
        writer.Finish();
    }

    [Fact]
    public void AReaderLeaseKeepsItsSegmentFromBeingFreedUntilTheReaderIsDisposed()
    {
        using var dir = new TempDir();
        using var writer = StartWriter(dir, "4000");
        using var queue = ReadOnly(dir);
        var reader = queue.OpenReader(0); // reads nothing: its lease stays at 0
        writer.Send("go");
        string[] done = writer.ReadLine().Split(' ');
        Assert.Equal(["DONE", "0", "0"], done); // "drain" committed everything, yet nothing was recycled or deleted
        Assert.True(reader.TryRead(out ReadOnlySpan<byte> first) && WriterPayload.Matches(first, 0));

        reader.Dispose(); // removes the lease
        writer.Send("drain");
        string freed = writer.ReadLine();
        Assert.StartsWith("FIRST ", freed);
        Assert.True(long.Parse(freed["FIRST ".Length..]) > 0, $"nothing freed once the lease was gone: {freed}");
        Assert.True(queue.FirstSequence > 0);
        Assert.Throws<SequenceOutOfRangeException>(() => queue.OpenReader(0));
        writer.Finish();
    }

    [Fact]
    public void AppendingOrFlushingAReadOnlyQueueThrowsSayingItIsReadOnlyAndWritesNothing()
    {
        using var dir = new TempDir();
        using (var writer = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes }))
            writer.Enqueue(WriterPayload.For(0));
        var before = Directory.GetFiles(dir.Path).ToDictionary(f => f, File.ReadAllBytes);
        using var queue = new MmapQueue(dir.Path, new MmapQueueOptions { ReadOnly = true });
        foreach (Action call in new Action[] { () => queue.Enqueue([1, 2, 3]), () => queue.TryEnqueue([1], out _), queue.Flush,
                                               () => queue.Enqueue(3, 0, (span, _) => span.Clear()) })
        {
            var e = Assert.Throws<InvalidOperationException>(call);
            Assert.Contains("read-only", e.Message);
        }
        Assert.Throws<InvalidOperationException>(() => queue.DurableSequence);
        Assert.Equal(1, queue.NextSequence);
        using (var reader = queue.OpenReader(0)) Assert.True(reader.TryRead(out ReadOnlySpan<byte> p) && WriterPayload.Matches(p, 0));
        queue.Dispose();
        foreach ((string file, byte[] bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(file)); // no header, watermark or lock written
    }

    [Fact]
    public void ASegmentRecycledUnderAReaderIsSkippedAndReportedNeverReadAsOldRecords()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        using var writer = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, RecycleSegments = false });
        for (long i = 0; i < 1200; i++) writer.Enqueue(WriterPayload.For(i));
        writer.Flush();
        using var queue = new MmapQueue(dir.Path, new MmapQueueOptions { ReadOnly = true }, logs);
        using var reader = queue.OpenReader(0);
        for (long i = 0; i < 10; i++) Assert.True(reader.TryRead(out ReadOnlySpan<byte> p) && WriterPayload.Matches(p, i));

        // What a retention pass that listed the leases just before this reader registered would do: rename the file
        // to a spare and zero it (in the file the reader has mapped).
        string first = Directory.GetFiles(dir.Path, "*.seg").Order(StringComparer.Ordinal).First();
        string spare = Path.Combine(dir.Path, "next.seg.0123456789abcdef.tmp");
        File.Move(first, spare);
        using (var handle = File.OpenHandle(spare, FileMode.Open, FileAccess.Write))
            RandomAccess.Write(handle, new byte[SegmentBytes - 64], 64);
        Thread.Sleep(20); // past the 10 ms between two checks of the same segment

        long secondBase = long.Parse(Path.GetFileNameWithoutExtension(Directory.GetFiles(dir.Path, "*.seg").Order(StringComparer.Ordinal).First()));
        Assert.True(reader.TryRead(out ReadOnlySpan<byte> next), "the reader stopped at the zeroed segment instead of moving on");
        Assert.Equal(secondBase + 1, reader.NextSequence);
        Assert.True(WriterPayload.Matches(next, secondBase), "a record of the vanished segment, or a stale one, was delivered");
        Assert.Single(logs.WithId(1032)); // ReaderSkippedDropped: the gap is logged, never silent
        Assert.Throws<SequenceOutOfRangeException>(() => queue.OpenReader(5));
    }

    [Fact]
    public void AReadOnlyOpenCreatesNothingWhenCursorsLockIsMissing()
    {
        using var dir = new TempDir();
        using (var writer = new MmapQueue(dir.Path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes }))
        {
            for (long i = 0; i < 10; i++) writer.Enqueue(WriterPayload.For(i));
            using var consumer = writer.OpenReader("a");
            consumer.Seek(5);
            consumer.Commit();
        }
        File.Delete(Path.Combine(dir.Path, CursorStore.LockName)); // a queue from before cursors.lock, or cleared by hand
        string[] before = Listing(dir.Path);
        using (var queue = ReadOnly(dir))
        {
            Assert.Equal(5, queue.Consumers["a"]); // read from cursors, without its lock
            Assert.Equal(10, queue.NextSequence);
            Assert.Equal(before, Listing(dir.Path)); // its lease (readers/) is its registration with the writer, not a file for reading
        }
        Assert.Equal(before, Listing(dir.Path));
    }

    /// <summary>Every entry of the queue directory but <c>readers/</c> (reader leases) with its size and mode, sorted.</summary>
    private static string[] Listing(string dir) =>
        Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetRelativePath(dir, p).StartsWith(Processes.ReaderLease.DirectoryName, StringComparison.Ordinal))
            .Select(p => $"{Path.GetRelativePath(dir, p)} {(File.Exists(p) ? new FileInfo(p).Length : -1)} {File.GetUnixFileMode(p)}")
            .Order(StringComparer.Ordinal).ToArray();
}
