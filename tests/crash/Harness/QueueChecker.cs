using MmapQueues.Crash;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// What opening a crashed queue found: every record's tag in sequence order (<see cref="QueueChecker.Deleted"/>
/// below <paramref name="FirstSequence"/>, where retention deleted consumed segments), what recovery logged,
/// and, in consumer mode, the consumer's committed position after open (null: not registered).
/// </summary>
internal sealed record RecoveredQueue(List<long> Tags, int TornTails, int DroppedSegments, long FirstSequence = 0, long? ConsumerPosition = null);

/// <summary>A check the harness made failed: the message says which and where.</summary>
internal sealed class CrashCheckException(string message) : Exception(message);

internal static class QueueChecker
{
    /// <summary>The tag of a sequence that retention deleted (every named consumer had committed past it).</summary>
    public const long Deleted = long.MinValue;

    /// <summary>The tag of an aborted record (readers skip it): a claim a killed producer never published.</summary>
    public const long Aborted = long.MinValue + 1;

    /// <summary>
    /// Opens the queue with the library (recovery runs: torn tails are truncated and made durable), reads
    /// every record from the first and checks each payload is exactly what the child wrote for its tag.
    /// With <paramref name="consumer"/>, retention may have deleted a prefix (reading starts at
    /// FirstSequence), and the consumer, if registered, is opened and must resume at its committed position
    /// and read the same intact records to the end. Disposes the queue, so what it returns is durable from here on.
    /// </summary>
    /// <exception cref="CrashCheckException">A payload differs from what was written, or a reader stopped short or resumed elsewhere.</exception>
    public static RecoveredQueue OpenAndRead(string dir, long segmentBytes, int maxExtra, string? consumer = null)
    {
        var log = new CapturingLoggerFactory();
        var tags = new List<long>();
        long first;
        long? position = null;
        using (var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = segmentBytes, FlushMode = FlushMode.Async }, log))
        {
            first = q.FirstSequence;
            if (first != 0 && consumer is null) throw new CrashCheckException($"{dir}: first sequence {first}, expected 0 (no retention here)");
            for (long s = 0; s < first; s++) tags.Add(Deleted);
            using (var r = q.OpenReader(first, OutOfRange.Throw))
            {
                while (r.TryRead(out ReadOnlySpan<byte> payload))
                {
                    string? bad = TestRecord.Verify(payload, maxExtra, out long tag);
                    if (bad is not null)
                        throw new CrashCheckException($"{dir}: record {r.NextSequence - 1} reached a reader with a payload that differs from what was written: {bad}");
                    while (tags.Count < r.NextSequence - 1) tags.Add(Aborted); // sequences the reader skipped
                    tags.Add(tag);
                }
                while (tags.Count < r.NextSequence) tags.Add(Aborted); // aborted records at the end
            }
            if (tags.Count != q.NextSequence)
                throw new CrashCheckException($"{dir}: the reader stopped after sequence {tags.Count}, but the queue's next sequence is {q.NextSequence} (a gap)");
            if (consumer is not null && q.Consumers.TryGetValue(consumer, out long committed))
            {
                position = committed;
                if (committed < first || committed > q.NextSequence)
                    throw new CrashCheckException($"{dir}: consumer {consumer} is committed at {committed}, outside the queue's [{first}, {q.NextSequence}] after open");
                ResumeConsumer(q, consumer, committed, tags, maxExtra, dir);
            }
        }
        return new RecoveredQueue(tags, log.Count(RecoveryEvents.TornTailTruncated), log.Count(RecoveryEvents.DroppedSegmentAfterTear),
            first, position);
    }

    /// <summary>Opens the named consumer (no commit): it must resume at <paramref name="committed"/> and read the same records to the end.</summary>
    private static void ResumeConsumer(MmapQueue q, string consumer, long committed, List<long> tags, int maxExtra, string dir)
    {
        using var r = q.OpenReader(consumer);
        if (r.NextSequence != committed)
            throw new CrashCheckException($"{dir}: consumer {consumer} committed at {committed} resumed at {r.NextSequence}");
        while (r.TryRead(out ReadOnlySpan<byte> payload))
        {
            long seq = r.NextSequence - 1;
            string? bad = TestRecord.Verify(payload, maxExtra, out long tag);
            if (bad is not null || seq >= tags.Count || tag != tags[(int)seq])
                throw new CrashCheckException($"{dir}: consumer {consumer} read record {seq} unlike the anonymous reader: {bad ?? $"tag 0x{tag:X}"}");
        }
        if (r.NextSequence != tags.Count)
            throw new CrashCheckException($"{dir}: consumer {consumer} stopped at {r.NextSequence}, the queue ends at {tags.Count} (a gap)");
    }
}
