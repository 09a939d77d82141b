using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MmapQueues.Format;
using MmapQueues.Native;

namespace MmapQueues.Storage;

/// <summary>
/// One segment file at run time: its mapping (mapped on demand, reference counted), the writer's
/// reservation tail while it is the active segment, and its flush bookkeeping.
/// </summary>
/// <remarks>
/// Mapping lifetime: every user of <see cref="Bytes"/> holds a reference taken with <see cref="Acquire"/>.
/// The writer holds one on the active segment for as long as it appends there; a reader holds one on the
/// segment its last view points into. The mapping is unmapped only when the count falls to zero, so a
/// <see cref="ReadOnlySpan{T}"/> handed to a reader can never outlive its pages.
/// </remarks>
internal sealed partial class Segment
{
    // Reservation tail, packed so that one compare-and-swap hands out both the sequence and the offset:
    // bits 32..62 = records reserved in this segment, bits 0..30 = next free byte offset, bit 31 = sealed.
    private const long SealedBit = 1L << 31;
    private const long OffsetMask = SealedBit - 1;
    private const long OneRecord = 1L << 32;
    private long _tail;

    private readonly object _mapLock = new();
    private MappedRegion? _map;
    private int _refs;
    private bool _deleted;
    private bool _keepMappedWhenIdle; // a recently sealed segment recycling may reuse soon: see KeepMappingWhenIdle

    public Segment(string path, long baseSequence, long size)
    {
        Path = path;
        BaseSequence = baseSequence;
        Size = size;
        _tail = SegmentLayout.FirstRecordOffset;
    }

    public string Path { get; private set; }
    public long BaseSequence { get; private set; }
    public long Size { get; }

    /// <summary>Byte offset up to which this segment has been made durable by <c>Flush</c>.</summary>
    public long FlushedOffset { get; set; } = SegmentLayout.FirstRecordOffset;

    /// <summary>The durable watermark last stored in the header (it lags <see cref="FlushedOffset"/>).</summary>
    public long Watermark { get; set; } = SegmentLayout.FirstRecordOffset;

    /// <summary>The header's watermark changed and no msync has covered it yet.</summary>
    public bool WatermarkUnsynced { get; set; }

    /// <summary>Set once the flush frontier has passed this segment's end: it is durable as a whole.</summary>
    public bool FullyFlushed { get; set; }

    /// <summary>
    /// True when every byte of this segment past what the writer appended is zero on disk, not only in memory:
    /// a segment created fresh (fallocated) is. A recycled segment is not (its previous lap's frames are
    /// zeroed in the page cache; the disk keeps them until writeback), until <see cref="SegmentFiles.ZeroTailOnDisk"/>
    /// made the rest durable zeros at close. A tail that opening walked is zero on disk too (opening msyncs
    /// everything past the walk's start). A clean-close flag in the header may only be set when this is true.
    /// </summary>
    public bool TailZeroOnDisk { get; set; } = true;

    /// <summary>
    /// Set by opening, before any reader exists, on a segment that was already complete (an end marker, or
    /// full) and is not appended to again: every record before its end is published, so a zero commit word
    /// inside it is corruption, never "nothing yet".
    /// </summary>
    public bool RecoveredComplete { get; set; }

    /// <summary>
    /// Set by opening on the tail it resumes (before any reader exists): every frame before this offset was
    /// published then, so a zero commit word before it is corruption (open no longer walks the durable
    /// prefix of a v2 tail; the reader that meets such a hole reports it). 0 on other segments.
    /// </summary>
    public int RecoveredEnd { get; set; }

    /// <summary>The sequence opening assigned to <see cref="RecoveredEnd"/> (from the v2 watermark's record count, or a walk).</summary>
    public long RecoveredNext { get; set; }

    /// <summary>
    /// Whether a zero commit word at (<paramref name="offset"/>, <paramref name="sequence"/>) is corruption rather
    /// than "nothing published yet": anywhere in a segment complete at open, before the tail's recovered end,
    /// or at that end when the records a reader counted there disagree with the count opening used.
    /// </summary>
    public bool ZeroWordIsCorruptAt(int offset, long sequence) =>
        RecoveredComplete || offset < RecoveredEnd || (offset == RecoveredEnd && sequence != RecoveredNext);

    /// <summary>What <see cref="ZeroWordIsCorruptAt"/> found (<paramref name="word"/>: the zero or claim word there), for the exception (out of line: readers call it only to throw).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public FrameProblem ZeroWordProblem(int offset, long sequence, uint word) =>
        !RecoveredComplete && offset == RecoveredEnd
            ? new($"sequence {RecoveredNext} at offset {offset} (the header's watermark counts {RecoveredNext - BaseSequence} records before it)",
                  $"{sequence - BaseSequence} records before it")
            : new("a record or the end marker (published here when the queue was opened)",
                  word == 0 ? "a zero commit word" : $"a claim in progress (commit word 0x{word:X8})");


    /// <summary>The mapping. Only valid while the caller holds a reference (<see cref="Acquire"/>).</summary>
    public Span<byte> Bytes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _map!.Span;
    }

    internal MappedRegion Region => _map ?? throw new InvalidOperationException($"{Path} is not mapped");

    /// <summary>Takes a reference, mapping the file first when nobody holds it.</summary>
    public void Acquire()
    {
        lock (_mapLock)
        {
            if (_deleted) throw new InvalidOperationException($"Segment {Path} was deleted by retention.");
            if (_map is null)
            {
                if (_readerOf is not null) throw new InvalidOperationException($"Segment {Path} of a read-only queue is mapped by TryAcquire.");
                using var handle = QueueFiles.OpenExisting(Path, write: true);
                _map = MappedRegion.Map(handle, Size, Path);
            }
            _refs++;
        }
    }

    /// <summary>
    /// Drops a reference; the last one unmaps (and deletes the file if retention asked for it), unless
    /// <see cref="KeepMappingWhenIdle"/> parks the mapping for recycling.
    /// </summary>
    public void Release()
    {
        lock (_mapLock)
        {
            if (--_refs > 0) return;
            if (_keepMappedWhenIdle && !_deleted) return; // parked: mapped, no reference, nothing to delete
            UnmapUnderMapLock();
            if (_deleted && _readerOf is null) QueueFiles.Delete(Path); // a reader process never deletes: its "deleted" means "vanished"
        }
    }

    /// <summary>
    /// With <paramref name="keep"/>, the mapping stays when the last reference goes, so that retention can hand it
    /// to the allocator with the segment (its pages stay mapped: nothing is unmapped or faulted in again). The queue
    /// keeps this for its last few sealed segments only (a growing queue must not keep every segment mapped); without
    /// <paramref name="keep"/> an idle mapping is unmapped now.
    /// </summary>
    public void KeepMappingWhenIdle(bool keep)
    {
        lock (_mapLock)
        {
            _keepMappedWhenIdle = keep;
            if (!keep && _refs == 0) UnmapUnderMapLock();
        }
    }

    private void UnmapUnderMapLock()
    {
        _map?.Dispose();
        _map = null;
    }

    public int ReferenceCount { get { lock (_mapLock) return _refs; } }
    public bool IsMapped { get { lock (_mapLock) return _map is not null; } }

    /// <summary>
    /// Marks the segment for deletion: the file is removed now if nobody holds it, else by the last
    /// <see cref="Release"/>. Returns true when it was removed at once.
    /// </summary>
    public bool MarkDeleted()
    {
        lock (_mapLock)
        {
            _deleted = true;
            if (_refs > 0) return false;
            UnmapUnderMapLock(); // a parked mapping (KeepMappingWhenIdle)
            QueueFiles.Delete(Path);
            return true;
        }
    }

    /// <summary>Installs a mapping made elsewhere (a new or recovered segment) with one reference held.</summary>
    public void AdoptMapping(MappedRegion map)
    {
        lock (_mapLock)
        {
            _map = map;
            _refs = 1;
        }
    }

    /// <summary>Gives the segment its final name and base sequence (a spare becoming the active segment).</summary>
    public void Rename(string path, long baseSequence)
    {
        Path = path;
        BaseSequence = baseSequence;
    }

    // ---- writer side -------------------------------------------------------------------------------

    /// <summary>Sets where appending resumes (after recovery of a tail segment).</summary>
    public void ResumeAt(long records, long offset) => _tail = (records << 32) | offset;

    /// <summary>
    /// Reserves <paramref name="frameLength"/> bytes lock-free. Returns false when the segment is sealed or
    /// the frame does not fit; the caller then rolls to the next segment.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReserve(int frameLength, out int offset, out long sequence)
    {
        while (true)
        {
            long t = Volatile.Read(ref _tail);
            long off = t & OffsetMask;
            if ((t & SealedBit) != 0 || off + frameLength > Size)
            {
                offset = 0;
                sequence = 0;
                return false;
            }
            if (Interlocked.CompareExchange(ref _tail, t + OneRecord + frameLength, t) == t)
            {
                offset = (int)off;
                sequence = BaseSequence + (t >>> 32);
                return true;
            }
        }
    }

    /// <summary>Seals the segment: no reservation succeeds after this. Returns (records, end offset).</summary>
    public (long Records, int End) Seal()
    {
        long t = Interlocked.Or(ref _tail, SealedBit);
        return (t >>> 32, (int)(t & OffsetMask));
    }

    /// <summary>Records reserved so far and the next free offset (a racy snapshot; exact once sealed).</summary>
    public (long Records, int End) ReservedTail
    {
        get
        {
            long t = Volatile.Read(ref _tail);
            return (t >>> 32, (int)(t & OffsetMask));
        }
    }

    public bool IsSealed => (Volatile.Read(ref _tail) & SealedBit) != 0;

    /// <summary>Acquire-loads the commit word at <paramref name="offset"/>; pairs with <see cref="PublishWord"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint ReadWord(int offset) => Frames.LoadCommitWord(Bytes, offset);

    /// <summary>
    /// Publishes a record by release-storing its commit word, after its CRC and payload: a reader whose
    /// <see cref="ReadWord"/> sees the word also sees every byte stored before it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PublishWord(int offset, uint word) => Frames.PublishCommitWord(Bytes, offset, word);

    /// <summary>Stores the claim of a frame just reserved (<see cref="Frames.StoreClaim"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreClaim(int offset, long sequence, int payloadLength) => Frames.StoreClaim(Bytes, offset, sequence, payloadLength);

    /// <summary>Publishes a frame: its commit word and CRC in one release store (<see cref="Frames.PublishHeader"/>); pairs with <see cref="ReadWord"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PublishHeader(int offset, uint word, uint crc) => Frames.PublishHeader(Bytes, offset, word, crc);

    public override string ToString() => $"{System.IO.Path.GetFileName(Path)} (base {BaseSequence})";
}
