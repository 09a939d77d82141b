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
        "Both bursts cross segment rolls, so the queue runs at its preheat rate (zero-filling page-cache pages, then copying into them: two passes) where write() fills the page cache in one copy; the final flush writes the same bytes to the same disk for both.";
    public const string Case3Large =
        "As for 64 B: the preheat pipeline for the queue, one copy into the page cache for FileStream, then the same disk.";
    public const string Case3SmallAppend =
        "Within one preheated segment the queue appends faster (case 1); across rolls it waits for the next spare, which FileStream never does.";
    public const string Case3LargeAppend =
        "The queue waits for spare segments (preheat rate); FileStream copies 1 MiB at a time into the page cache.";
    public const string Case3Sync =
        "FileStream.Flush(true) is a full fsync (metadata and journal); the queue's msync of the record's pages is closer to fdatasync.";
    public const string Case4Latency =
        "The device cache flush (the floor, 33-50 µs) plus ext4's write of the dirty folio and unwritten-extent conversion, " +
        "for both sides; the queue's msync may write a whole large folio (FACTS.md) where pwrite writes 4 KiB.";
    public const string Case4Group =
        "Group size: a leader takes along what is published when its walk runs; on 2 shared vCPUs, waking 7 followers and letting them publish takes about as long as one msync, so a group holds ~2-3 records, more when the disk is slower.";
    public const string Case5 =
        "Both are cache-resident here; the queue pays a call per record and a CRC that also covers the sequence and commit " +
        "word (10 CRC steps per 64 B record against 8), the FileStream loop is one inlined loop.";
    public const string Case5Memory =
        "Address translation, most likely: 256 MiB read through 4 KiB page-table entries under nested paging (KVM) " +
        "outruns the TLB, while read() copies through the kernel's huge-page direct map into a cache-resident buffer; " +
        "at 16 MiB (within TLB reach) the two are level, and software prefetch did not help.";
    public const string Case6 =
        "Scheduling: writer and reader each spin one of the only 2 vCPUs, shared with other agents; a descheduled reader " +
        "finds a backlog and every record in it is late, for the raw hand-off as for the queue, so the tails are the " +
        "scheduler's and the p50 shows the queue's own cost (frame, CRC, commit word).";
    public const string Case8 =
        "Steady state allocates nothing; what remains happens once per segment: a roll (segment object, array copy, log, next spare task) and a reader mapping the next segment (file handle).";
}
