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
        "Page-cache zero-fill: every new segment page is zeroed and allocated by the kernel (perf: ~60 % memset in MADV_POPULATE_WRITE) before the copy into it; the heater does it ahead of the writer on the other core and the writer faults the rest itself, so a burst longer than a segment runs at about two cores' zero-fill rate, not the copy rate.";
    public const string Case2 =
        "Both end at the disk; the queue also fills the page cache (preheat: kernel zeroing) and writes back mmapped pages " +
        "through ext4 delayed allocation and unwritten-extent conversion, where O_DIRECT sends one buffer by DMA.";
    public const string Case3Small =
        "Both bursts cross segment rolls: the queue zero-fills each new page (preheat or fault) and then copies into it, two passes, where write() fills the page cache in one copy; the final flush writes the same bytes to the same disk for both.";
    public const string Case3Large =
        "As for 64 B: zero-fill plus copy for the queue, one copy into the page cache for FileStream, then the same disk.";
    public const string Case3SmallAppend =
        "Within one preheated segment the queue appends 2-3x faster (case 1); across rolls it pays the page-cache zero-fill, which write() does not.";
    public const string Case3LargeAppend =
        "Zero-fill plus copy (two passes over each page) for the queue against one copy for FileStream; at 1 KiB the copy dominates, so the second pass shows.";
    public const string Case3Sync =
        "FileStream.Flush(true) is a full fsync (metadata and journal); the queue's msync of the record's pages is closer to fdatasync.";
    public const string Case4Latency =
        "The device cache flush (the floor, 33-50 µs) plus ext4's write of the dirty folio and unwritten-extent conversion, " +
        "for both sides; the queue's msync may write a whole large folio (docs/MEASUREMENTS.md) where pwrite writes 4 KiB.";
    public const string Case4Group =
        "The cycle, not the group: the leader now gathers (yields until as many records wait as producers waited last time, at most one flush's time), so a group holds ~7.5-8 of the 8 producers' records (4.3 without gathering); but on 2 shared vCPUs, waking 7 followers and letting them append again takes ~40-50 µs on top of each ~110-120 µs msync, so 8 records per ~190 µs against 1 per ~90 µs.";
    public const string Case5 =
        "Both are cache-resident here; the queue pays a call per record and a CRC that also covers the sequence and commit " +
        "word (10 CRC steps per 64 B record against 8), the FileStream loop is one inlined loop.";
    public const string Case5Memory =
        "Address translation, most likely: 256 MiB read through 4 KiB page-table entries under nested paging (KVM) " +
        "outruns the TLB, while read() copies through the kernel's huge-page direct map into a cache-resident buffer; " +
        "at 16 MiB (within TLB reach) the two are level, and software prefetch did not help.";
    public const string Case5Batch =
        "Two passes over each batch (the check, then the consumer's foreach) where TryRead makes one; at 64 B the CPU's " +
        "out-of-order window already overlaps consecutive records' CRC chains in TryRead's loop, so checking four at a " +
        "time gains nothing (it is kept for payloads of 512 B and more, where it measured 10-25 % faster than one chain).";
    public const string Case5BatchMemory =
        "As case 5 at 256 MiB (reading the mapping through 4 KiB page-table entries under nested paging outruns the TLB), " +
        "plus the second pass over each batch (up to 64 KiB).";
    public const string Case6 =
        "Scheduling: writer and reader each spin one of the only 2 vCPUs, shared with other agents; a descheduled reader " +
        "finds a backlog and every record in it is late, for the raw hand-off as for the queue, so the tails are the " +
        "scheduler's and the p50 shows the queue's own cost (frame, CRC, commit word).";
    public const string Case8 =
        "Steady state allocates nothing; what remains happens once per segment: a roll (segment object, array copy, log, next spare task) and a reader mapping the next segment (file handle).";
    public const string Case9Steady =
        "Nearly every roll takes a recycled segment and the writer takes almost no page fault; what is left is the consumer reading the lines the writer has just written on the other of the two vCPUs " +
        "(72-byte frames straddle cache lines, so lines move between the cores), the background cleaning memset and the 1 s interval flush, against a floor that runs alone.";
    public const string Case9Spares =
        "Only the per-record cost of case 1 and the 1 s interval flush: the pages are cached, mapped and dirty from the background cleaning, so the writer neither faults nor waits for a zero-fill.";
    public const string Case9Growing =
        "Every page is new to the page cache: zeroed by the kernel (the heater's MADV_POPULATE_WRITE ahead of the writer, or the writer's own fault) and then copied into, two passes against write()'s one; " +
        "with 1 GiB segments the heater works through one file the writer is already in, so the writer catches it up and takes the faults itself.";
    public const string Case9Large =
        "The recycling pipeline at the writer's pace: a 64 MiB segment fills in about 13-25 ms at 1 KiB, about what zeroing a freed one takes on the background thread, " +
        "so some rolls take the fresh reserve, whose replacement is zero-filled by the kernel; the consumer also reads and checks every byte again on the other vCPU.";
}
