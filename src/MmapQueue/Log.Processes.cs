using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>Log messages of reader processes' leases (ids 1038-1039, in the consumers and retention range). Listed in docs/LOGGING.md.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1038, Level = LogLevel.Information, Message = "Removed reader lease {File} of {Holder}: no process holds it any more (it exited or crashed)")]
    public static partial void DeadReaderLeaseRemoved(ILogger logger, string file, string holder);

    [LoggerMessage(EventId = 1039, Level = LogLevel.Warning, Message = "Reader lease {File} is damaged at offset {Offset}: {Problem}")]
    public static partial void ReaderLeaseDamaged(ILogger logger, string file, long offset, string problem);
}
