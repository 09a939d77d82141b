using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>
/// Source-generated log messages. Event ids are stable and listed in docs/LOGGING.md; ranges: 1001-1009 open
/// and recovery, 1010-1019 segments, 1020-1029 flush, 1030-1039 consumers and retention, 1040-1049 shipping,
/// 1050-1059 hosting. A new event takes the next free id in its range and a line in docs/LOGGING.md.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Opened queue {Path}: {Segments} segments, sequences [{First}, {Next}), scanned {Scanned} segments in {Milliseconds} ms")]
    public static partial void Opened(ILogger logger, string path, int segments, long first, long next, int scanned, double milliseconds);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Torn tail in {File}: truncated {Bytes} bytes from offset {Offset} (beyond the durable watermark {DurableEnd}); zeroed so a later crash cannot bring them back")]
    public static partial void TornTailTruncated(ILogger logger, string file, long offset, long bytes, long durableEnd);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Dropped segment {File} after a torn tail in an earlier segment: its records were never durable")]
    public static partial void DroppedSegmentAfterTear(ILogger logger, string file);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Corruption in {File} at offset {Offset}: {Detail}")]
    public static partial void CorruptionFound(ILogger logger, string file, long offset, string detail);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "Rolled to segment {File} at sequence {BaseSequence}")]
    public static partial void SegmentRolled(ILogger logger, string file, long baseSequence);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Preparing the next segment failed; retrying when the writer needs it: {Reason}")]
    public static partial void SpareFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Preheating {File} failed; the writer takes its own page faults there: {Reason}")]
    public static partial void PreheatFailed(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Debug, Message = "Recycled a freed segment as the spare {Spare} (cleaned: {Cleaned})")]
    public static partial void SpareRecycled(ILogger logger, string spare, bool cleaned);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Warning, Message = "Could not recycle the freed segment {Path} ({Reason}); {Outcome}")]
    public static partial void RecycleFailed(ILogger logger, string path, string reason, string outcome);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Warning, Message = "Could not zero the recycled tail of {Path} on disk at close ({Reason}): everything is durable, but the next open walks the tail (no CLEAN_CLOSE)")]
    public static partial void TailZeroFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Warning, Message = "Could not delete the index file {Path} of a freed segment ({Reason}); the next open removes it")]
    public static partial void IndexDeleteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Warning, Message = "Slow flush of {Path}: {Milliseconds} ms")]
    public static partial void SlowFlush(ILogger logger, string path, double milliseconds);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Error, Message = "Background flush of {Path} failed")]
    public static partial void BackgroundFlushFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 1023, Level = LogLevel.Error, Message = "Dispose of {Path} left a claim open past ClaimTimeout; its segment stays mapped and the queue's writer lock held until this process exits (the next open, in a new process, reads the claim as aborted): {Detail}")]
    public static partial void ClaimOpenAtClose(ILogger logger, string path, string detail);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "Unfinished claim in {File} at offset {Offset}: sequence {Sequence} ({Bytes} bytes) rewritten as an aborted record; the records after it are kept ({How})")]
    public static partial void ClaimAborted(ILogger logger, string file, long offset, long sequence, long bytes, string how);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Information, Message = "Queue {Path} uses segment size {Existing} from queue.meta; the option asked for {Requested}")]
    public static partial void SegmentSizeFromMeta(ILogger logger, string path, long existing, long requested);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "Retention deleted segment {File} (sequences [{First}, {Next})): {Reason}")]
    public static partial void SegmentDeleted(ILogger logger, string file, long first, long next, string reason);

    [LoggerMessage(EventId = 1030, Level = LogLevel.Warning, Message = "Dropped {Records} records of {Path} from sequence {First} before every consumer read them: {Reason}")]
    public static partial void RecordsDropped(ILogger logger, string path, long records, long first, string reason);

    [LoggerMessage(EventId = 1040, Level = LogLevel.Information, Message = "Replica {Peer} connected to {Path}; shipping from sequence {Sequence}")]
    public static partial void PeerConnected(ILogger logger, string peer, string path, long sequence);

    [LoggerMessage(EventId = 1041, Level = LogLevel.Information, Message = "Replica {Peer} disconnected from {Path} at sequence {Sequence}: {Reason}")]
    public static partial void PeerDisconnected(ILogger logger, string peer, string path, long sequence, string reason);
}
