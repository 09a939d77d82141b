using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>Log messages of consumers, seek, retention and capacity (ids 1031-1037; 1012 and 1030 are in Log.cs). Listed in docs/LOGGING.md.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1031, Level = LogLevel.Warning, Message = "Consumer {Name} in {Path} resumes at {Resumed} instead of its committed {Committed}: {Reason}")]
    public static partial void ConsumerClamped(ILogger logger, string path, string name, long committed, long resumed, string reason);

    [LoggerMessage(EventId = 1032, Level = LogLevel.Warning, Message = "Reader {Name} in {Path} skipped sequences [{From}, {To}): they were dropped by a retention limit before it read them")]
    public static partial void ReaderSkippedDropped(ILogger logger, string path, string name, long from, long to);

    [LoggerMessage(EventId = 1033, Level = LogLevel.Warning, Message = "Index {File} ignored and rebuilt: {Problem}")]
    public static partial void IndexRebuilt(ILogger logger, string file, string problem);

    [LoggerMessage(EventId = 1034, Level = LogLevel.Information, Message = "Removed leftover segment {File} below the retention floor {Floor} (a deletion interrupted by a crash)")]
    public static partial void LeftoverSegmentRemoved(ILogger logger, string file, long floor);

    [LoggerMessage(EventId = 1035, Level = LogLevel.Error, Message = "Background retention of {Path} failed")]
    public static partial void RetentionFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 1036, Level = LogLevel.Error, Message = "Writing the index of {File} failed; seeks into it scan until it is rebuilt")]
    public static partial void IndexWriteFailed(ILogger logger, string file, Exception exception);

    [LoggerMessage(EventId = 1037, Level = LogLevel.Debug, Message = "Queue {Path} is full ({Bytes} of {Limit} bytes); producer waits up to {Timeout}")]
    public static partial void ProducerBlocked(ILogger logger, string path, long bytes, long limit, TimeSpan timeout);
}
