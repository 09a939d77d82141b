using Microsoft.Extensions.Logging;

namespace MmapQueues.Nats;

/// <summary>Log events of the forwarder (category <c>MmapQueues.Nats.NatsForwarder</c>); ids 1060-1069 are listed in docs/LOGGING.md.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1060, Level = LogLevel.Information,
        Message = "Forwarding {Queue} (consumer {Consumer}) to stream {Stream} subject {Subject} from sequence {From}")]
    public static partial void ForwarderStarted(ILogger logger, string queue, string consumer, string stream, string subject, long from);

    [LoggerMessage(EventId = 1061, Level = LogLevel.Information,
        Message = "Stream {Stream} already holds sequences [{Committed}, {Resume}) of {Queue}: skipping them (the consumer had committed up to {Committed})")]
    public static partial void ResumedAfterStream(ILogger logger, string stream, long committed, long resume, string queue);

    [LoggerMessage(EventId = 1062, Level = LogLevel.Warning,
        Message = "Cannot prove what stream {Stream} holds past sequence {Committed} of {Queue}: {Reason}. Resending from {Committed}; the duplicate window removes repeats sent within it")]
    public static partial void ResumeUnproven(ILogger logger, string stream, long committed, string queue, string reason);

    [LoggerMessage(EventId = 1063, Level = LogLevel.Warning,
        Message = "Forwarding {Queue} to {Stream} failed at sequence {Sequence} (attempt {Attempt}); retrying in {DelayMs} ms; the backlog stays in the queue")]
    public static partial void ForwardRetrying(ILogger logger, Exception error, string queue, string stream, long sequence, int attempt, long delayMs);

    [LoggerMessage(EventId = 1064, Level = LogLevel.Information,
        Message = "Created stream {Stream} (subject {Subject}, R{Replicas})")]
    public static partial void StreamCreated(ILogger logger, string stream, string subject, int replicas);

    [LoggerMessage(EventId = 1065, Level = LogLevel.Information,
        Message = "Forwarder of {Queue} stopped at sequence {Acknowledged}: {Reason}")]
    public static partial void ForwarderStopped(ILogger logger, string queue, long acknowledged, string reason);

    [LoggerMessage(EventId = 1066, Level = LogLevel.Error,
        Message = "Forwarder of {Queue} stopped on a permanent error at sequence {Sequence}")]
    public static partial void ForwardFailed(ILogger logger, Exception error, string queue, long sequence);

    [LoggerMessage(EventId = 1067, Level = LogLevel.Debug,
        Message = "Stream {Stream} reported {Count} messages of {Queue} as duplicates (already stored); counted as delivered")]
    public static partial void DuplicatesAcknowledged(ILogger logger, string stream, long count, string queue);

    [LoggerMessage(EventId = 1068, Level = LogLevel.Error,
        Message = "Could not commit the forwarder's position in {Queue}; it stays at {Committed}, and the records from there are offered again on the next start (the stream keeps one copy)")]
    public static partial void ForwardCommitFailed(ILogger logger, Exception error, string queue, long committed);

    [LoggerMessage(EventId = 1069, Level = LogLevel.Warning,
        Message = "Stream {Stream} holds {Queue} only below sequence {StreamEnd}, but acknowledged records up to {Acknowledged}: the server lost acknowledged messages (an R1 store killed before it wrote them?). Sending again from {StreamEnd} what the queue still holds")]
    public static partial void StreamLostAcknowledged(ILogger logger, string stream, long streamEnd, long acknowledged, string queue);
}
