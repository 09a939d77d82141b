using System.ComponentModel.DataAnnotations;
using MmapQueues.Format;

namespace MmapQueues;

/// <summary>
/// How a queue stores and flushes records. Plain settable properties so that configuration binding works;
/// the queue validates them once and keeps its own copy, so changing an instance later has no effect.
/// </summary>
/// <remarks>
/// The rules live in one method and are reached two ways: <see cref="Validate"/> (what the queue constructor
/// calls; it throws on the first problem) and <see cref="IValidatableObject"/> (what the source-generated
/// options validator in <c>MmapQueue.Extensions</c> calls at host start-up; it reports every problem at once).
/// No data-annotation attributes: they would report the same range twice, and without the value found.
/// </remarks>
public sealed class MmapQueueOptions : IValidatableObject
{
    /// <summary>
    /// Size of every segment file. Default 64 MiB: preheating one takes ~17 ms (docs/MEASUREMENTS.md) and the writer
    /// may enter it while it is still being heated; retention frees disk in steps small enough for a local
    /// buffer; opening a queue (mostly the tail segment's scan) takes 10-30 ms (benchmarks/RESULTS.md).
    /// Must be a multiple of 4096, from 4 KiB to 1 GiB. Fixed when the queue is created.
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

    /// <summary>
    /// Reuse segments that retention frees (every named consumer is past them, no reader holds them) as the next
    /// spare instead of deleting them. Default true. The file is renamed and its frames zeroed in memory on a
    /// background thread while its pages are still in the page cache, so a roll into it costs the writer no page
    /// fault and the kernel no zero-fill: a new segment's page is zeroed by the kernel, then copied into (two
    /// passes); a recycled one is only copied into. Consumed segments are then freed without waiting for a flush
    /// to reach them (their records are out of the queue, as after a deletion). A roll takes a fresh segment when
    /// no recycled one is ready (benchmarks/RESULTS.md, case 9). At most three spare files exist at a time, a
    /// fresh one and two recycled (see <see cref="MaxQueueSizeBytes"/>); a freed segment beyond that is deleted.
    /// Set false to have every freed segment flushed, then deleted, as before.
    /// </summary>
    public bool RecycleSegments { get; set; } = true;

    /// <summary><c>mlock</c> segments while they are written, so the kernel never pages them out. Default false.</summary>
    public bool LockInMemory { get; set; }

    /// <summary>
    /// Most bytes of segment files the queue keeps (0, the default: no limit). When a new segment would pass
    /// it, retention runs first; if that frees nothing, <see cref="FullPolicy"/> decides. The spare segments (one
    /// preheated, plus at most two recycled with <see cref="RecycleSegments"/>: three files) and segments a reader
    /// still holds after retention dropped them come on top: a recycled spare holds no record and the roll that
    /// takes it brings the count back, so freeing a segment into a spare makes room exactly as deleting it does. At least two
    /// segments, checked when the queue opens (the segment size may come from an existing queue).
    /// </summary>
    public long MaxQueueSizeBytes { get; set; }

    /// <summary>What appending does when the queue is at <see cref="MaxQueueSizeBytes"/>. Default
    /// <see cref="QueueFullPolicy.Block"/>: a local buffer should slow producers, not lose data, by default.</summary>
    public QueueFullPolicy FullPolicy { get; set; } = QueueFullPolicy.Block;

    /// <summary>
    /// How long <see cref="QueueFullPolicy.Block"/> waits for space before throwing
    /// <see cref="QueueFullException"/>. Default 60 s (as Kafka's <c>max.block.ms</c>);
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits for ever (cancel with the token overload).
    /// </summary>
    public TimeSpan FullBlockTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long <see cref="MmapQueue.Flush"/>, a sync-mode acknowledgement and <see cref="MmapQueue.Dispose"/> wait
    /// at a claim that is not published (an <see cref="MmapQueue.Enqueue{TState}"/> callback still running) before
    /// giving up: Flush and the acknowledgement throw <see cref="TimeoutException"/> naming the claim; Dispose logs
    /// it and keeps that segment mapped and the queue's writer lock held until the process exits. The bound is on
    /// the claim's age as the flusher saw it, so waiters queued behind one claim all give up together. Default 5 s: far longer than a callback that serializes a record (micro-
    /// seconds) plus a GC pause or a burst of page faults on a loaded machine, yet short enough for Dispose to end
    /// within a host's shutdown timeout (30 s in ASP.NET Core). From 1 ms to 1 hour.
    /// </summary>
    public TimeSpan ClaimTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Deletes sealed segments last written longer ago than this (file modification time), whether or not
    /// named consumers read them (counted in <see cref="MmapQueue.DroppedRecords"/> when they had not).
    /// Null, the default: no age limit. Never deletes the segment being written or one a reader is on.
    /// </summary>
    public TimeSpan? RetentionAge { get; set; }

    /// <summary>
    /// Permissions of the files the queue creates. Default <c>0600</c> (<see cref="UnixFileMode.UserRead"/> |
    /// <see cref="UnixFileMode.UserWrite"/>): only the owner can read the payloads. Add
    /// <see cref="UnixFileMode.GroupRead"/> (0640) or <see cref="UnixFileMode.OtherRead"/> (0644) to let a reader
    /// running as another user in; a directory the queue creates gets the matching search bits (0700, 0750,
    /// 0755). Only read bits may be added: a queue directory others can write to could be filled with links.
    /// Files and directories that already exist keep their mode.
    /// </summary>
    public UnixFileMode FilePermissions { get; set; } = DefaultFilePermissions;

    /// <summary>The default <see cref="FilePermissions"/>: 0600.</summary>
    public const UnixFileMode DefaultFilePermissions = Storage.QueueFiles.DefaultFileMode;

    /// <summary>
    /// Open a queue that another process holds for writing (or that nobody holds) to read it, from a process
    /// other than the writer's. Default false. A read-only queue takes no writer lock and runs no recovery: it never
    /// writes a segment, a header, an index, <c>queue.meta</c> or the lock file. It maps segments read-only, follows
    /// the writer's rolls, registers a lease in <c>readers/</c> for each reader (so the writer neither deletes nor
    /// recycles a segment a reader is on), waits for records through the <c>notify</c> page, and commits named
    /// consumers through the shared <c>cursors</c> file. <see cref="MmapQueue.Enqueue(ReadOnlySpan{byte})"/>,
    /// <see cref="MmapQueue.TryEnqueue"/> and <see cref="MmapQueue.Flush"/> throw <see cref="InvalidOperationException"/>.
    /// The other options that shape the queue (segment size, flushing, limits) are the writer's and are ignored;
    /// so is <see cref="FilePermissions"/>: the files a reader creates (its lease, <c>notify</c>, ownership locks) take the
    /// mode of the queue's <c>queue.meta</c>, and, in a process running as root, its owner.
    /// See the README, "Process model".
    /// </summary>
    public bool ReadOnly { get; set; }

    /// <summary>Test hook for the crash suite: skip the msync of every Nth flush while still reporting it durable.</summary>
    internal int TestOnlySkipMsyncEveryNthFlush { get; set; }

    /// <summary>Queue id written to queue.meta when the queue is created (replicas adopt their source's; tests fix it). Null: a new Guid.</summary>
    internal Guid? QueueIdForNewQueue { get; set; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid setting, its value and the allowed range.</summary>
    public void Validate()
    {
        foreach (var (message, member) in Problems())
            throw new ArgumentException(message, member);
    }

    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext) =>
        Problems().Select(p => new ValidationResult(p.Message, [p.Member]));

    /// <summary>Every rule, in one place; the first problem is what <see cref="Validate"/> throws.</summary>
    private IEnumerable<(string Message, string Member)> Problems()
    {
        if (SegmentSizeBytes < SegmentLayout.MinSegmentSize || SegmentSizeBytes > SegmentLayout.MaxSegmentSize)
            yield return ($"SegmentSizeBytes must be from {SegmentLayout.MinSegmentSize} (4 KiB) to " +
                          $"{SegmentLayout.MaxSegmentSize} (1 GiB); found {SegmentSizeBytes}.", nameof(SegmentSizeBytes));
        else if (SegmentSizeBytes % SegmentLayout.PageSize != 0)
            yield return ($"SegmentSizeBytes must be a multiple of the page size {SegmentLayout.PageSize}; " +
                          $"found {SegmentSizeBytes} ({SegmentSizeBytes % SegmentLayout.PageSize} bytes over).", nameof(SegmentSizeBytes));
        if (!Enum.IsDefined(FlushMode))
            yield return ($"FlushMode must be Async, Interval or Sync; found {(int)FlushMode}.", nameof(FlushMode));
        if (FlushMode == FlushMode.Interval && (FlushInterval <= TimeSpan.Zero || FlushInterval > TimeSpan.FromHours(1)))
            yield return ($"FlushInterval must be more than 0 and at most 1 hour in Interval mode; found {FlushInterval}.", nameof(FlushInterval));
        if (MaxQueueSizeBytes < 0)
            yield return ($"MaxQueueSizeBytes must be 0 (no limit) or at least two segments; found {MaxQueueSizeBytes}.", nameof(MaxQueueSizeBytes));
        else if (MaxQueueSizeBytes > 0 && MaxQueueSizeBytes < 2 * SegmentSizeBytes)
            yield return ($"MaxQueueSizeBytes must be 0 (no limit) or at least two segments ({2 * SegmentSizeBytes} bytes " +
                          $"with SegmentSizeBytes {SegmentSizeBytes}); found {MaxQueueSizeBytes}.", nameof(MaxQueueSizeBytes));
        if (!Enum.IsDefined(FullPolicy))
            yield return ($"FullPolicy must be Block, Reject or DropOldest; found {(int)FullPolicy}.", nameof(FullPolicy));
        if (FullBlockTimeout != Timeout.InfiniteTimeSpan && (FullBlockTimeout < TimeSpan.Zero || FullBlockTimeout.TotalMilliseconds > int.MaxValue))
            yield return ($"FullBlockTimeout must be from 0 to {int.MaxValue} ms, or Timeout.InfiniteTimeSpan; found {FullBlockTimeout}.", nameof(FullBlockTimeout));
        if ((FilePermissions & DefaultFilePermissions) != DefaultFilePermissions || (FilePermissions & ~Storage.QueueFiles.AllowedFileModes) != 0)
            yield return ($"FilePermissions must hold UserRead and UserWrite (0600) and may add only GroupRead and OtherRead (up to 0644); " +
                          $"found 0{Convert.ToString((int)FilePermissions, 8)}.", nameof(FilePermissions));
        if (ClaimTimeout < TimeSpan.FromMilliseconds(1) || ClaimTimeout > TimeSpan.FromHours(1))
            yield return ($"ClaimTimeout must be from 1 ms to 1 hour; found {ClaimTimeout}.", nameof(ClaimTimeout));
        if (RetentionAge is { } age && age <= TimeSpan.Zero)
            yield return ($"RetentionAge must be more than 0, or null for no age limit; found {age}.", nameof(RetentionAge));
    }

    internal MmapQueueOptions Clone() => (MmapQueueOptions)MemberwiseClone();
}
