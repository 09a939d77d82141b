namespace MmapQueues.Tests.Procs;

/// <summary>Named consumers owned and committed from reader processes (<see cref="MmapQueueOptions.ReadOnly"/>) beside the writer.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CrossProcessConsumerTests
{
    private static readonly MmapQueueOptions WriterOptions = new() { SegmentSizeBytes = 16 * 1024 };

    [Fact]
    public void AConsumerOwnedByAReaderProcessIsRefusedElsewhereNamingItAndItsCommitsReachTheWriter()
    {
        using var dir = new TempDir();
        using var writer = new MmapQueue(dir.Path, WriterOptions);
        for (long i = 0; i < 1000; i++) writer.Enqueue(WriterPayload.For(i));
        using var consumer = ChildProcess.Start("consume", dir.Path, "shipper", "600");
        consumer.Expect("READY");

        var refused = Assert.Throws<InvalidOperationException>(() => writer.OpenReader("shipper"));
        Assert.Contains($"pid {consumer.Id} (", refused.Message);
        using (var second = ChildProcess.Start("consume", dir.Path, "shipper", "1"))
        {
            string line = second.ReadLine();
            Assert.StartsWith("REFUSED ", line);
            Assert.Contains($"pid {consumer.Id} (", line);
            second.Finish();
        }

        consumer.Expect("READ 600");
        Assert.Equal(600, writer.Consumers["shipper"]); // committed in the other process, through the shared cursors file
        consumer.Finish(); // lets go of the name
        using var resumed = writer.OpenReader("shipper");
        Assert.Equal(600, resumed.NextSequence);
        Assert.True(resumed.TryRead(out ReadOnlySpan<byte> payload) && WriterPayload.Matches(payload, 600));
    }

    [Fact]
    public void AConsumerTheWriterProcessOwnsIsRefusedToAReaderProcessNamingTheWriter()
    {
        using var dir = new TempDir();
        using var writer = new MmapQueue(dir.Path, WriterOptions);
        writer.Enqueue(WriterPayload.For(0));
        using (writer.OpenReader("local"))
        {
            using var child = ChildProcess.Start("consume", dir.Path, "local", "1");
            string line = child.ReadLine();
            Assert.StartsWith("REFUSED ", line);
            Assert.Contains($"pid {Environment.ProcessId} (", line);
            child.Finish();
        }
        using var after = ChildProcess.Start("consume", dir.Path, "local", "1"); // released with the reader
        after.Expect("READY");
        after.Expect("READ 1");
        after.Finish();
        Assert.Equal(1, writer.Consumers["local"]);
    }

    [Fact]
    public void RetentionInTheWriterWaitsForAConsumerThatCommitsFromAReaderProcess()
    {
        using var dir = new TempDir();
        using var writer = new MmapQueue(dir.Path, WriterOptions);
        using (var consumer = ChildProcess.Start("consume", dir.Path, "slow", "0")) // registers "slow" at 0, reads nothing
        {
            consumer.Expect("READY");
            consumer.Expect("READ 0");
            consumer.Finish();
        }
        for (long i = 0; i < 3000; i++) writer.Enqueue(WriterPayload.For(i));
        using (var local = writer.OpenReader("fast"))
        {
            while (local.TryRead(out _)) { }
            local.Commit();
        }
        writer.ApplyRetention();
        Assert.Equal(0, writer.FirstSequence); // "slow", registered by another process, has read nothing

        using (var consumer = ChildProcess.Start("consume", dir.Path, "slow", "3000"))
        {
            consumer.Expect("READY");
            consumer.Expect("READ 3000");
            consumer.Finish();
        }
        writer.WaitForBackgroundWork(); // index builds hold their segments while they run
        writer.ApplyRetention();
        Assert.True(writer.FirstSequence > 0, "the reader process's commit did not let retention free what it read");
    }

    [Fact]
    public void RemoveConsumerIsRefusedWhileAnotherProcessOwnsTheNameNamingIt()
    {
        using var dir = new TempDir();
        using var writer = new MmapQueue(dir.Path, WriterOptions);
        for (long i = 0; i < 10; i++) writer.Enqueue(WriterPayload.For(i));
        using (var reader = writer.OpenReader("shipper"))
        {
            reader.Seek(5);
            reader.Commit();
        }
        using (var owner = ChildProcess.Start("own", dir.Path, "shipper"))
        {
            owner.Expect("READY");
            var refused = Assert.Throws<InvalidOperationException>(() => writer.RemoveConsumer("shipper"));
            Assert.Contains($"pid {owner.Id} (", refused.Message);
            Assert.Equal(5, writer.Consumers["shipper"]); // still registered
            owner.Finish();
        }
        Assert.True(writer.RemoveConsumer("shipper")); // nobody owns it now
        Assert.False(writer.Consumers.ContainsKey("shipper"));
        Assert.Null(Processes.ConsumerOwnership.CurrentHolder(dir.Path, "shipper")); // the removal let go of the name
    }
}
