using Microsoft.Extensions.Logging;

namespace MmapQueues;

internal static partial class Log
{
    [LoggerMessage(EventId = 1042, Level = LogLevel.Information, Message = "Sender {Peer} started a session into replica {Path} at sequence {Sequence}")]
    public static partial void ReplicaSessionStarted(ILogger logger, string peer, string path, long sequence);

    [LoggerMessage(EventId = 1043, Level = LogLevel.Information, Message = "Sender {Peer} ended its session into replica {Path}; durable below {Sequence}")]
    public static partial void ReplicaSessionEnded(ILogger logger, string peer, string path, long sequence);

    [LoggerMessage(EventId = 1044, Level = LogLevel.Warning, Message = "Session from {Peer} into replica {Path} failed ({Type}): {Detail}")]
    public static partial void ReplicaSessionFailed(ILogger logger, string peer, string path, string type, string detail);

    [LoggerMessage(EventId = 1045, Level = LogLevel.Warning, Message = "Receiver for replica {Path} could not accept a connection ({Error}); accepting again in {DelayMs} ms")]
    public static partial void ReceiverAcceptFailed(ILogger logger, string path, string error, int delayMs);
}
