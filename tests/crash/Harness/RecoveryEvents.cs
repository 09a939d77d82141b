namespace MmapQueues.Tests.Crash.Harness;

/// <summary>The library's log event ids the crash checks count (torn tails truncated, segments dropped, corruption found).</summary>
internal static class RecoveryEvents
{
    public const int TornTailTruncated = 1002, DroppedSegmentAfterTear = 1003, CorruptionFound = 1004;
}
