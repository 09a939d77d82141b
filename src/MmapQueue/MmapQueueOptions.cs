namespace MmapQueues;

/// <summary>
/// How a queue stores and flushes records. Plain settable properties so that configuration binding works;
/// the queue validates them once and keeps its own copy, so changing an instance later has no effect.
/// </summary>
public sealed class MmapQueueOptions
{
    /// <summary>
    /// Size of every segment file. Default 64 MiB: preheating one takes ~17 ms (well ahead of a writer even
    /// at 2 GB/s), retention frees disk in steps small enough for a local buffer, and the tail scan on open
    /// stays near 10 ms. Must be a multiple of 4096, from 4 KiB to 1 GiB. Fixed when the queue is created.
    /// </summary>
    public long SegmentSizeBytes { get; set; } = DefaultSegmentSizeBytes;

    /// <summary>The default <see cref="SegmentSizeBytes"/>: 64 MiB.</summary>
    public const long DefaultSegmentSizeBytes = 64L << 20;

    /// <summary>When records become durable. Default <see cref="MmapQueues.FlushMode.Interval"/>.</summary>
    public FlushMode FlushMode { get; set; } = FlushMode.Interval;

    /// <summary>
    /// Period of the background flush in <see cref="MmapQueues.FlushMode.Interval"/> mode: the most a power
    /// loss can cost. Default 1 s (Chronicle and Kafka leave it to the OS; 1 s bounds the loss cheaply).
    /// </summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Fault every page of a new segment in for writing before the writer reaches it. Default true.</summary>
    public bool Preheat { get; set; } = true;

    /// <summary><c>mlock</c> segments while they are written, so the kernel never pages them out. Default false.</summary>
    public bool LockInMemory { get; set; }

    /// <summary>Test hook for the crash suite: skip the msync of every Nth flush while still reporting it durable.</summary>
    internal int TestOnlySkipMsyncEveryNthFlush { get; set; }

    /// <summary>Queue id written to queue.meta when the queue is created (replicas adopt their source's; tests fix it). Null: a new Guid.</summary>
    internal Guid? QueueIdForNewQueue { get; set; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid setting, its value and the allowed range.</summary>
    public void Validate()
    {
        if (SegmentSizeBytes < Format.SegmentLayout.MinSegmentSize || SegmentSizeBytes > Format.SegmentLayout.MaxSegmentSize)
            throw new ArgumentException($"SegmentSizeBytes must be from {Format.SegmentLayout.MinSegmentSize} (4 KiB) to " +
                                        $"{Format.SegmentLayout.MaxSegmentSize} (1 GiB); found {SegmentSizeBytes}.", nameof(SegmentSizeBytes));
        if (SegmentSizeBytes % Format.SegmentLayout.PageSize != 0)
            throw new ArgumentException($"SegmentSizeBytes must be a multiple of the page size {Format.SegmentLayout.PageSize}; " +
                                        $"found {SegmentSizeBytes} ({SegmentSizeBytes % Format.SegmentLayout.PageSize} bytes over).", nameof(SegmentSizeBytes));
        if (!Enum.IsDefined(FlushMode))
            throw new ArgumentException($"FlushMode must be Async, Interval or Sync; found {(int)FlushMode}.", nameof(FlushMode));
        if (FlushMode == FlushMode.Interval && (FlushInterval <= TimeSpan.Zero || FlushInterval > TimeSpan.FromHours(1)))
            throw new ArgumentException($"FlushInterval must be more than 0 and at most 1 hour in Interval mode; found {FlushInterval}.", nameof(FlushInterval));
    }

    internal MmapQueueOptions Clone() => (MmapQueueOptions)MemberwiseClone();
}
