namespace MmapQueues.Benchmarks.Compare;

/// <summary>
/// What limits each row: one sentence each, from the profiles in RESULTS.md ("What limits each row").
/// Kept free of figures so that a re-run cannot make them stale.
/// </summary>
internal static class Limits
{
    public const string Case1Small =
        "Per-record fixed cost the floor does not pay: the compare-and-swap on the shared reservation tail, the segment and " +
        "span lookups, the release store of the commit word and the sync-mode/reader-waiting checks (~6-8 ns); on this " +
        "shared 2-vCPU guest the spread is mostly other processes' load (quiet runs reach 80-90 M rec/s).";
    public const string Case1Large =
        "Memory bandwidth: both sides copy 1 KiB and run one CRC32C chain over it; the queue's fixed per-record cost is amortized.";
    public const string Case1Rolls =
        "The segment pipeline: one spare at a time is fallocated and preheated with MADV_POPULATE_WRITE, whose cost is the " +
        "kernel zeroing and allocating page-cache pages (perf: ~60 % memset); a burst longer than a segment runs at that rate.";
    public const string Case2 =
        "Both end at the disk; the queue also fills the page cache (preheat: kernel zeroing) and writes back mmapped pages " +
        "through ext4 delayed allocation and unwritten-extent conversion, where O_DIRECT sends one buffer by DMA.";
    public const string Case3Small =
        "The final flush writes the same bytes to the same disk for both, so the disk sets most of the total; the queue's lead is in the append phase.";
    public const string Case3Large =
        "As for 64 B, and at 1 KiB the FileStream path is one memcpy per record too, so the append phases are close.";
    public const string Case3SmallAppend =
        "FileStream pays two Write calls (header, payload) through its buffering layer per record; the queue one reservation and a copy.";
    public const string Case3LargeAppend =
        "Copy bandwidth for both; the queue also crosses segment rolls (preheat rate) within the 256 MiB.";
    public const string Case3Sync =
        "FileStream.Flush(true) is a full fsync (metadata and journal); the queue's msync of the record's pages is closer to fdatasync.";
    public const string Case4Latency =
        "The device cache flush (the floor, 33-50 µs) plus ext4's write of the dirty folio and unwritten-extent conversion, " +
        "for both sides; the queue's msync may write a whole large folio (FACTS.md) where pwrite writes 4 KiB.";
    public const string Case4Group =
        "One msync per group: a producer's flush takes along every record already published, so the gain is bounded by how " +
        "many producers are waiting when a flush starts and by the 2 vCPUs the 8 threads share.";
    public const string Case5 =
        "The per-call cost of TryRead (a call, the frame classification, bounds checks, state stores) and a CRC that also " +
        "covers the sequence and commit word (10 CRC steps per 64 B record against 8), where the FileStream loop is one inlined loop.";
    public const string Case6 =
        "Scheduling: writer and reader spin on the only 2 vCPUs, shared with other agents; a preempted reader finds a backlog " +
        "and every record in it is late, while the raw hand-off simply loses the values it missed.";
    public const string Case8 =
        "Steady state allocates nothing; what remains is a segment roll (new segment object, array copy, log, next spare task) amortized over a segment.";
}
