namespace MmapQueues.Shipping;

/// <summary>How a <see cref="QueueExporter"/> runs its sessions.</summary>
public sealed class ExportOptions
{
    /// <summary>
    /// Keep following the tail after everything visible was sent: new records are shipped as producers
    /// publish them, until the token is cancelled or the queue is disposed. Default false (ship what is
    /// visible when the call starts, wait for the replica to make it durable, return). Asynchronous
    /// exports only.
    /// </summary>
    public bool Follow { get; set; }

    /// <summary>Receives progress after every chunk and every acknowledgement; null for none.</summary>
    public IProgress<ShippingProgress>? Progress { get; set; }

    /// <summary>
    /// Ship as this named consumer (retention by shipping): the session registers it if it is new (at
    /// <see cref="MmapQueue.FirstSequence"/>, as <see cref="MmapQueue.OpenReader(string)"/> does) and commits
    /// it to the replica's durable position at every acknowledgement, so retention deletes a segment once
    /// the replica holds it durably and every other consumer is past it. The source also remembers durably
    /// the highest sequence it ever sent under this name, and never commits past it nor accepts a replica
    /// that claims more. No reader of the same name may be open during the session. Null (the default):
    /// shipping does not hold back or free any segment.
    /// </summary>
    public string? ConsumerName { get; set; }

    /// <summary>How both sides prove who they are; null: plain TCP, allowed only to a loopback peer (or over a caller's stream).</summary>
    public ShippingAuthentication? Authentication { get; set; }

    /// <summary>Longest wait for each handshake step (TLS, CHALLENGE, RESUME). Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Longest wait for the replica's acknowledgement of END, or of a SYNC while following (which is
    /// resent every quarter of this while idle, as a heartbeat); also the longest the replica may leave sent
    /// bytes unread before the connection is dropped (TCP_USER_TIMEOUT on Linux). Default 60 s.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Idle time before TCP keepalive probes a silent peer (then every 10 s, 3 probes); <see cref="TimeSpan.Zero"/> turns keepalive off. Default 30 s.</summary>
    public TimeSpan KeepAliveTime { get; set; } = TimeSpan.FromSeconds(30);

    internal ExportOptions Check()
    {
        if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), HandshakeTimeout, "must be positive");
        if (IdleTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(IdleTimeout), IdleTimeout, "must be positive");
        if (KeepAliveTime < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(KeepAliveTime), KeepAliveTime, "must not be negative");
        return this;
    }
}

/// <summary>How a <see cref="QueueReceiver"/> accepts sessions and bounds its replica.</summary>
public sealed class ReceiverOptions
{
    /// <summary>Options for the replica queue (its segment size is always the source's). Null: defaults.
    /// <see cref="MmapQueueOptions.MaxQueueSizeBytes"/> caps the replica's disk; a full replica refuses
    /// the stream (code <c>limit</c>) rather than block, unless its policy is DropOldest.</summary>
    public MmapQueueOptions? QueueOptions { get; set; }

    /// <summary>How both sides prove who they are; null: plain TCP, allowed only on a loopback address (or over a caller's stream).</summary>
    public ShippingAuthentication? Authentication { get; set; }

    /// <summary>Largest segment size a new replica adopts from a source. Default 64 MiB.</summary>
    public long MaxSegmentSizeBytes { get; set; } = MmapQueueOptions.DefaultSegmentSizeBytes;

    /// <summary>Accept only this source queue id (a new replica adopts no other); null: adopt the first one, then keep it.</summary>
    public Guid? SourceQueueId { get; set; }

    /// <summary>Longest wait for each handshake step. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest silence from the sender during a session (a following sender sends heartbeats); also the longest the sender may leave RESUME or an ACK unread before the connection is dropped. Default 120 s.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Idle time before TCP keepalive probes a silent peer (then every 10 s, 3 probes); <see cref="TimeSpan.Zero"/> turns keepalive off. Default 30 s.</summary>
    public TimeSpan KeepAliveTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Where sessions log their start and end and why a peer was refused; null for none.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; set; }

    internal ReceiverOptions Check()
    {
        if (MaxSegmentSizeBytes <= 0) throw new ArgumentOutOfRangeException(nameof(MaxSegmentSizeBytes), MaxSegmentSizeBytes, "must be positive");
        if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), HandshakeTimeout, "must be positive");
        if (IdleTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(IdleTimeout), IdleTimeout, "must be positive");
        if (KeepAliveTime < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(KeepAliveTime), KeepAliveTime, "must not be negative");
        return this;
    }
}
