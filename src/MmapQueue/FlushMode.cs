namespace MmapQueues;

/// <summary>When appended records become durable (survive power loss). See the README's durability table.</summary>
public enum FlushMode
{
    /// <summary>
    /// The OS writes pages back when it likes; only <see cref="MmapQueue.Flush"/> (and <c>Dispose</c>) promise
    /// anything. A process kill loses nothing that <c>Enqueue</c> returned; a power loss may lose everything
    /// since the last <c>Flush</c>.
    /// </summary>
    Async,

    /// <summary>
    /// A background flush every <see cref="MmapQueueOptions.FlushInterval"/>: a power loss loses at most
    /// about that interval plus one flush's duration of records.
    /// </summary>
    Interval,

    /// <summary>
    /// <c>Enqueue</c> returns only once its record is durable. Concurrent producers share one msync
    /// (group commit). A power loss loses no record whose <c>Enqueue</c> returned.
    /// </summary>
    Sync,
}
