using MmapQueues.Crash;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>What opening a crashed queue found: every record's tag in sequence order, and what recovery logged.</summary>
internal sealed record RecoveredQueue(List<long> Tags, int TornTails, int DroppedSegments);

/// <summary>A check the harness made failed: the message says which and where.</summary>
internal sealed class CrashCheckException(string message) : Exception(message);

internal static class QueueChecker
{
    /// <summary>
    /// Opens the queue with the library (recovery runs: torn tails are truncated and made durable), reads
    /// every record from the first and checks each payload is exactly what the child wrote for its tag.
    /// Disposes the queue, so what it returns is durable from here on.
    /// </summary>
    /// <exception cref="CrashCheckException">A payload differs from what was written, or the reader stopped short.</exception>
    public static RecoveredQueue OpenAndRead(string dir, long segmentBytes, int maxExtra)
    {
        var log = new CountingLoggerFactory();
        var tags = new List<long>();
        using (var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = segmentBytes, FlushMode = FlushMode.Async }, log))
        {
            if (q.FirstSequence != 0) throw new CrashCheckException($"{dir}: first sequence {q.FirstSequence}, expected 0 (no retention here)");
            using var r = q.OpenReader(0);
            while (r.TryRead(out ReadOnlySpan<byte> payload))
            {
                string? bad = TestRecord.Verify(payload, maxExtra, out long tag);
                if (bad is not null)
                    throw new CrashCheckException($"{dir}: record {r.NextSequence - 1} reached a reader with a payload that differs from what was written: {bad}");
                tags.Add(tag);
            }
            if (tags.Count != q.NextSequence)
                throw new CrashCheckException($"{dir}: the reader stopped after {tags.Count} records, but the queue's next sequence is {q.NextSequence} (a gap)");
        }
        return new RecoveredQueue(tags, log.Count(CountingLoggerFactory.TornTailTruncated), log.Count(CountingLoggerFactory.DroppedSegmentAfterTear));
    }
}
