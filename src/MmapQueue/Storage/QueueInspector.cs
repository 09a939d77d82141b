using System.Buffers.Binary;
using MmapQueues.Format;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Storage;

/// <summary>A segment file as the inspector found it: header validated, watermark read (in its format version).</summary>
internal readonly record struct InspectedSegment(string Path, long BaseSequence, long DurableEnd, uint Version);

/// <summary>How the records of a segment end.</summary>
internal enum SegmentEnding
{
    /// <summary>A zero commit word: the segment is still being written, or was torn there.</summary>
    Open,
    /// <summary>The end-of-segment marker.</summary>
    Marker,
    /// <summary>No room for another frame header: the end is implicit.</summary>
    Full,
    /// <summary>A frame that fails its checks (<see cref="SegmentScan.Problem"/> says why).</summary>
    Bad,
    /// <summary>A claim in progress: a producer reserved the frame at the end and has not published it
    /// (<see cref="SegmentScan.Problem"/> carries "claim in progress at offset N (length L)").</summary>
    Claim,
}

/// <summary>One record handed to a visitor; <see cref="Payload"/> is valid only during the call.</summary>
internal readonly ref struct InspectedRecord(long sequence, string file, int offset, bool aborted, ReadOnlySpan<byte> payload)
{
    public long Sequence { get; } = sequence;
    public string File { get; } = file;
    public int Offset { get; } = offset;
    public bool Aborted { get; } = aborted;
    public ReadOnlySpan<byte> Payload { get; } = payload;
}

/// <summary>Return false to stop the scan.</summary>
internal delegate bool RecordVisitor(in InspectedRecord record);

/// <summary>What a scan of one segment found: records, where they end and how, and non-zero bytes past the end.</summary>
internal sealed record SegmentScan(InspectedSegment Segment, long Records, int End, long NextSequence, SegmentEnding Ending,
    FrameProblem? Problem, long RemnantBytes, bool Stopped);

/// <summary>
/// Read-only inspection of a queue directory, for tools (<c>mmapq info/verify/dump/tail</c>): validates
/// <c>queue.meta</c> and segment headers and walks frames with <see cref="Frames"/>, reading the files with
/// <c>pread</c>. It takes no lock and writes nothing, so it can look at a queue another process is writing:
/// a record is immutable once its commit word is published, and a frame the writer is still filling reads
/// as a zero word or fails its CRC at the tail, which callers treat as "not yet".
/// </summary>
internal sealed class QueueInspector
{
    private byte[] _buffer = [];

    private QueueInspector(string directory, QueueDirectory.Meta meta)
    {
        Directory = directory;
        SegmentSize = meta.SegmentSize;
        QueueId = meta.QueueId;
    }

    public string Directory { get; }
    public long SegmentSize { get; }
    public Guid QueueId { get; }

    /// <summary>Opens <paramref name="directory"/>; a missing directory or one without <c>queue.meta</c> gets a clear error.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="InvalidDataException">The directory is not a queue (no queue.meta).</exception>
    /// <exception cref="QueueCorruptedException">queue.meta is not one MmapQueue wrote.</exception>
    public static QueueInspector Open(string directory)
    {
        string full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full))
            throw new DirectoryNotFoundException($"Queue directory {full} does not exist.");
        QueueDirectory.Meta? meta = QueueDirectory.TryReadMeta(Path.Combine(full, SegmentNames.MetaName));
        if (meta is null)
        {
            var names = System.IO.Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName).Take(5).ToList();
            string found = names.Count == 0 ? "it is empty" : $"it holds {string.Join(", ", names)}{(names.Count == 5 ? ", ..." : "")}";
            throw new InvalidDataException($"{full} is not an MmapQueue directory: expected {SegmentNames.MetaName}, but {found}.");
        }
        return new QueueInspector(full, meta.Value);
    }

    /// <summary>Lists the segment files now present, validating each header (a bad one throws <see cref="QueueCorruptedException"/>).</summary>
    public List<InspectedSegment> ListSegments()
    {
        var list = new List<InspectedSegment>();
        foreach (var (b, path) in QueueDirectory.ListSegments(Directory))
        {
            SegmentHeader h;
            try
            {
                h = SegmentFiles.Validate(path, b, SegmentSize, QueueId);
            }
            catch (FileNotFoundException)
            {
                continue; // retention deleted it between the listing and the read
            }
            list.Add(new InspectedSegment(path, b, h.DurableEnd, h.Version));
        }
        return list;
    }

    /// <summary>
    /// Lists the segments and scans the last one (no CRC checks) to find where the records end: what
    /// <c>info</c>, <c>dump</c> and <c>tail</c> start from. On a live queue the writer may roll and retention
    /// delete the listed last segment before it is read; then the listing is taken again, so the answer
    /// describes the queue as it is now. Null tail scan: no segments.
    /// </summary>
    /// <exception cref="FileNotFoundException">Segments vanished under every one of <see cref="ListAttempts"/> listings.</exception>
    public (List<InspectedSegment> Segments, SegmentScan? Tail) ListWithTail()
    {
        for (int attempt = 1; ; attempt++)
        {
            List<InspectedSegment> segments = ListSegments();
            if (segments.Count == 0) return (segments, null);
            try
            {
                return (segments, Scan(segments[^1], verifyCrc: false));
            }
            catch (FileNotFoundException) when (attempt < ListAttempts)
            {
                // Deleted after the listing: only possible once the writer moved on, so the next listing is newer.
            }
        }
    }

    /// <summary>How many listings <see cref="ListWithTail"/> takes before it gives up on a queue that changes faster than it reads.</summary>
    public const int ListAttempts = 10;

    /// <summary>
    /// Walks the frames of <paramref name="segment"/> from (<paramref name="offset"/>, <paramref name="sequence"/>)
    /// (the first frame and base sequence when omitted), calling <paramref name="visit"/> for each record at or
    /// after <paramref name="fromSequence"/>. With <paramref name="verifyCrc"/> every record's CRC is checked;
    /// with <paramref name="measureRemnant"/> the bytes past the end are read and non-zero ones counted.
    /// </summary>
    /// <exception cref="FileNotFoundException">The segment is gone: retention deleted it after it was listed, or
    /// recycled it while it was read (with <see cref="MmapQueueOptions.RecycleSegments"/> the file is zeroed and reused
    /// under another name: a scan that ends early or on a bad frame re-reads the header, and a header that is no longer
    /// this segment's means that, not corruption). A segment deleted after it was opened reads to the end.</exception>
    public SegmentScan Scan(InspectedSegment segment, RecordVisitor? visit = null, long fromSequence = 0, bool verifyCrc = true,
        bool measureRemnant = false, int offset = SegmentLayout.FirstRecordOffset, long sequence = -1, Action<int>? progress = null)
    {
        if (sequence < 0) sequence = segment.BaseSequence;
        if (_buffer.Length != SegmentSize) _buffer = new byte[SegmentSize];
        using SafeFileHandle file = QueueFiles.OpenExisting(segment.Path, write: false);
        var window = new Window(file, _buffer, offset);
        var cursor = new FrameCursor(_buffer.AsSpan(0, window.ValidEnd), offset, sequence);
        int reported = 0;
        while (true)
        {
            int off = cursor.Offset;
            long seq = cursor.Sequence;
            if (progress is not null && off - reported >= 1 << 20) { progress(off - reported); reported = off; }
            bool verify = verifyCrc && seq >= fromSequence;
            FrameKind kind = cursor.Read(verify);
            // The window is a prefix of the file: read on while the frame needs bytes the segment has.
            while (cursor.RequiredEnd > window.ValidEnd && window.ValidEnd < SegmentSize)
            {
                bool whole = window.Ensure((int)Math.Min(cursor.RequiredEnd, SegmentSize)); // a length past the end is then Bad
                cursor.Extend(_buffer.AsSpan(0, window.ValidEnd));
                kind = cursor.Read(verify);
                if (!whole) break;
            }
            if (kind == FrameKind.SegmentFull && off + SegmentLayout.RecordHeaderSize <= SegmentSize)
                kind = FrameKind.Bad; // only the file ended (it is shorter than its header says)
            switch (kind)
            {
                case FrameKind.Payload:
                case FrameKind.Aborted:
                    if (visit is not null && seq >= fromSequence)
                    {
                        var record = new InspectedRecord(seq, segment.Path, off, kind == FrameKind.Aborted, cursor.Payload);
                        if (!visit(in record))
                        {
                            cursor.Advance();
                            return Done(cursor.Offset, cursor.Sequence, SegmentEnding.Open, null, stopped: true);
                        }
                    }
                    cursor.Advance();
                    continue;
                case FrameKind.EndOfSegment:
                    return Done(off, seq, SegmentEnding.Marker, null);
                case FrameKind.SegmentFull:
                    return Done(off, seq, SegmentEnding.Full, null);
                case FrameKind.Empty:
                    return Done(off, seq, SegmentEnding.Open, null);
                case FrameKind.Claimed:
                    // Only a claim whose claim CRC holds for this sequence is one the writer stored (the next open
                    // turns it into an aborted record); anything else there is a torn or foreign frame.
                    uint claimWord = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(off));
                    if (!Frames.ClaimHolds(_buffer.AsSpan(0, window.ValidEnd), off, claimWord, seq))
                        return Done(off, seq, SegmentEnding.Bad, new($"a claim whose claim CRC32C holds for sequence {seq}", $"commit word 0x{claimWord:X8} with a claim CRC that does not"));
                    return Done(off, seq, SegmentEnding.Claim, ClaimInProgress(off, cursor.Payload.Length));
                default:
                    return Done(off, seq, SegmentEnding.Bad, cursor.Problem ?? new("a complete frame", $"the file ends at {window.ValidEnd}"));
            }
        }

        static FrameProblem ClaimInProgress(int offset, long length) =>
            new("a published record", $"claim in progress at offset {offset} (length {length})");

        SegmentScan Done(int end, long next, SegmentEnding ending, FrameProblem? problem, bool stopped = false)
        {
            if (!stopped) ThrowIfRecycled(file, segment); // whatever ended the scan, the file may have been recycled under it
            progress?.Invoke((int)(ending is SegmentEnding.Marker or SegmentEnding.Full ? SegmentSize - reported : end - reported));
            long remnant = 0;
            if (measureRemnant && ending is SegmentEnding.Open or SegmentEnding.Bad or SegmentEnding.Claim)
            {
                int from = ending is SegmentEnding.Bad or SegmentEnding.Claim ? end : end + SegmentLayout.RecordHeaderSize;
                window.Ensure((int)SegmentSize);
                var rest = _buffer.AsSpan(Math.Min(from, (int)SegmentSize), window.ValidEnd - Math.Min(from, window.ValidEnd));
                int last = rest.LastIndexOfAnyExcept((byte)0);
                remnant = last < 0 ? 0 : last + 1 + (from - end);
            }
            return new SegmentScan(segment, next - segment.BaseSequence, end, next, ending, problem, remnant, stopped);
        }
    }

    /// <summary>
    /// Re-reads the header through the descriptor the scan used: if it is no longer the header of
    /// <paramref name="segment"/>, retention recycled the file meanwhile (its header is zeroed before any frame).
    /// </summary>
    private void ThrowIfRecycled(SafeFileHandle file, InspectedSegment segment)
    {
        Span<byte> header = stackalloc byte[SegmentLayout.HeaderSize];
        bool whole = RandomAccess.Read(file, header, 0) == header.Length;
        if (whole && SegmentHeader.Read(header).Check(segment.BaseSequence, SegmentSize, QueueId) is null) return;
        throw new FileNotFoundException($"Segment {segment.Path} was recycled by retention while it was read " +
                                        $"(its header no longer names base sequence {segment.BaseSequence}).", segment.Path);
    }

    /// <summary>Reads the file into the buffer lazily, in growing chunks, from a start offset.</summary>
    private struct Window(SafeFileHandle file, byte[] buffer, int start)
    {
        private int _chunk = 64 * 1024;

        public int ValidEnd { get; private set; } = start;

        /// <summary>Makes [start, <paramref name="end"/>) valid; false if the file is shorter.</summary>
        public bool Ensure(int end)
        {
            end = Math.Min(end, buffer.Length);
            while (ValidEnd < end)
            {
                int want = Math.Min(buffer.Length - ValidEnd, Math.Max(_chunk, end - ValidEnd));
                int n = RandomAccess.Read(file, buffer.AsSpan(ValidEnd, want), ValidEnd);
                if (n <= 0) return false;
                ValidEnd += n;
                _chunk = Math.Min(_chunk * 2, 8 << 20);
            }
            return true;
        }
    }
}
