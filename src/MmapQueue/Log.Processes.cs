using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>Log messages of reader processes (leases: 1038-1039, in the consumers and retention range; the read-only open: 1005; a pass skipped for a reader's lock: 1018). Listed in docs/LOGGING.md.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1038, Level = LogLevel.Information, Message = "Removed reader lease {File} of {Holder}: no process holds it any more (it exited or crashed)")]
    public static partial void DeadReaderLeaseRemoved(ILogger logger, string file, string holder);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Opened queue {Path} read-only: {Segments} segments from sequence {First}, in {Milliseconds:0.0} ms")]
    public static partial void OpenedReadOnly(ILogger logger, string path, int segments, long first, double milliseconds);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Replaced {Path}, which was not a notify page ({Reason}): it holds no durable state (a power cut can leave it empty)")]
    public static partial void NotifyReplaced(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Read-only queue {Path} cannot use the notify page ({Reason}): its readers poll every 10 ms instead of sleeping until a publish")]
    public static partial void ReaderWakeupUnavailable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Warning, Message = "Retention pass of {Path} skipped: {Reason}")]
    public static partial void RetentionPassSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1039, Level = LogLevel.Warning, Message = "Reader lease {File} is damaged at offset {Offset}: {Problem}")]
    public static partial void ReaderLeaseDamaged(ILogger logger, string file, long offset, string problem);
}
