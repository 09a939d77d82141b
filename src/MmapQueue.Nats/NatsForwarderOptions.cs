using NATS.Client.Core;

namespace MmapQueues.Nats;

/// <summary>What a <see cref="NatsForwarder"/> forwards, where, and how hard it pushes.</summary>
public sealed class NatsForwarderOptions
{
    /// <summary>The default named consumer the forwarder reads and commits: <c>nats</c>.</summary>
    public const string DefaultConsumerName = "nats";

    /// <summary>
    /// The connection: server URL(s), and the TLS (<see cref="NatsOpts.TlsOpts"/>: CA, client certificate and key)
    /// and credentials (<see cref="NatsOpts.AuthOpts"/>: user/password, token, NKey, a <c>.creds</c> file) exactly as
    /// NATS.Net takes them. Ignored when the forwarder is given a connection.
    /// </summary>
    public NatsOpts NatsOpts { get; set; } = NatsOpts.Default;

    /// <summary>The JetStream stream; created (R<see cref="StreamReplicas"/>, file storage) when missing.</summary>
    public string Stream { get; set; } = "";

    /// <summary>The subject every message goes to. The stream must capture it.</summary>
    public string Subject { get; set; } = "";

    /// <summary>The queue's named consumer the forwarder reads and commits (default <c>nats</c>).</summary>
    public string ConsumerName { get; set; } = DefaultConsumerName;

    /// <summary>Keep waiting for new records once caught up (true), or return once caught up (false, the default).</summary>
    public bool Follow { get; set; }

    /// <summary>Publishes in flight (sent, ack not yet back). Default 256.</summary>
    public int MaxInFlight { get; set; } = 256;

    /// <summary>
    /// 0 (the default): one message per record. Above 0: pack records into one message of at most this many
    /// body bytes (format in <see cref="NatsBatch"/>); a record that does not fit alone still goes alone.
    /// </summary>
    public int BatchMaxBytes { get; set; }

    /// <summary>Replicas of a stream the forwarder creates (1, 3 or 5). An existing stream is used as it is.</summary>
    public int StreamReplicas { get; set; } = 1;

    /// <summary>The duplicate window of a stream the forwarder creates; null keeps the server's default (2 minutes).</summary>
    public TimeSpan? DuplicateWindow { get; set; }

    /// <summary>How long to wait for one publish's acknowledgement before treating the server as unreachable. Default 10 s.</summary>
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First delay before a retry; doubles per failed attempt up to <see cref="RetryMaxDelay"/>, with ±50 % jitter. Default 100 ms.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest delay between retries. Default 5 s.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often, at most, the consumer's position is committed while acks stream in (it is always committed when caught up and on stop). Default 100 ms.</summary>
    public TimeSpan CommitInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Reported after every commit and when caught up.</summary>
    public IProgress<NatsForwardProgress>? Progress { get; set; }

    /// <summary>Checks every value; the message names the option, the limit and the value found.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Stream)) throw new ArgumentException("Stream is required: the JetStream stream to forward into.", nameof(Stream));
        if (string.IsNullOrWhiteSpace(Subject) || Subject.Contains('*') || Subject.Contains('>') || Subject.Any(char.IsWhiteSpace))
            throw new ArgumentException($"Subject must be a concrete subject (no wildcards, no spaces); found '{Subject}'.", nameof(Subject));
        if (string.IsNullOrEmpty(ConsumerName)) throw new ArgumentException("ConsumerName must not be empty.", nameof(ConsumerName));
        if (MaxInFlight is < 1 or > 65_536) throw new ArgumentException($"MaxInFlight must be from 1 to 65536; found {MaxInFlight}.", nameof(MaxInFlight));
        if (BatchMaxBytes < 0) throw new ArgumentException($"BatchMaxBytes must be 0 (one message per record) or positive; found {BatchMaxBytes}.", nameof(BatchMaxBytes));
        if (StreamReplicas is not (1 or 3 or 5)) throw new ArgumentException($"StreamReplicas must be 1, 3 or 5; found {StreamReplicas}.", nameof(StreamReplicas));
        if (AckTimeout <= TimeSpan.Zero) throw new ArgumentException($"AckTimeout must be positive; found {AckTimeout}.", nameof(AckTimeout));
        if (RetryBaseDelay <= TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay)
            throw new ArgumentException($"Retry delays must satisfy 0 < RetryBaseDelay <= RetryMaxDelay; found {RetryBaseDelay} and {RetryMaxDelay}.", nameof(RetryBaseDelay));
        if (CommitInterval < TimeSpan.Zero) throw new ArgumentException($"CommitInterval must not be negative; found {CommitInterval}.", nameof(CommitInterval));
    }
}

/// <summary>Where forwarding stands.</summary>
/// <param name="Acknowledged">Every record below this sequence is in the stream (acked, or found there on start) and committed or about to be.</param>
/// <param name="QueueNext">The queue's <see cref="MmapQueue.NextSequence"/> when this was reported.</param>
/// <param name="Bytes">Payload bytes acknowledged since the forwarder started.</param>
/// <param name="Retries">Retries since the forwarder started.</param>
public readonly record struct NatsForwardProgress(long Acknowledged, long QueueNext, long Bytes, long Retries);

/// <summary>A failure that retrying cannot fix (a record too large for the server, a stream that rejects the subject); it names the record.</summary>
public sealed class NatsForwardException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NatsForwardException(string message, long sequence, Exception? inner = null) : base(message, inner) => Sequence = sequence;

    /// <summary>The queue sequence of the record that could not be forwarded, or -1 when no record is involved.</summary>
    public long Sequence { get; }
}
