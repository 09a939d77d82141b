using static MmapQueues.Tests.QueueTestKit;

namespace MmapQueues.Tests;

/// <summary>A retention pass that fails after a durable commit or removal: logged, never thrown at the caller.</summary>
public class RetentionFailureTests
{
    private const int R = RecordsPerSegment;

    [Fact]
    public void CommitSucceedsAndLogsWhenTheRetentionPassAfterItFails()
    {
        using var dir = new TempDir();
        var log = new CapturingLoggerFactory();
        using var q = new MmapQueue(dir.Path, Options(o => o.RecycleSegments = false), log);
        Fill(q, 4 * R + 1);
        using var r = q.OpenReader("a");
        // A hostile file where the readers/ directory belongs: the pass cannot take readers/pass.lock.
        File.WriteAllText(Path.Combine(dir.Path, "readers"), "not a directory");
        r.Seek(3 * R);
        r.Commit(); // durable before the pass: must not throw
        Assert.Equal(3 * R, q.Consumers["a"]);
        LogEntry failed = Assert.Single(log.WithId(1035));
        Assert.IsAssignableFrom<IOException>(failed.Exception);
        Assert.Contains(dir.Path, failed.Message);
        Assert.Equal(5, SegmentFileNames(dir.Path).Length); // nothing deleted: the pass stopped before any unlink

        Assert.True(q.RemoveConsumer("b") is false);
        r.Dispose();
        Assert.True(q.RemoveConsumer("a")); // durable too (its pass has nothing to delete without consumers)
        Assert.Empty(q.Consumers);

        File.Delete(Path.Combine(dir.Path, "readers"));
        using var again = q.OpenReader("a");
        again.Seek(3 * R);
        again.Commit();
        Assert.Equal(2, SegmentFileNames(dir.Path).Length); // the next pass goes on
    }
}
