using MmapQueues.Format;

namespace MmapQueues.Storage;

/// <summary>
/// The sparse index of one segment: (record number, offset) of the first record at or after every
/// <c>step</c> bytes, so a seek scans at most one step of commit words. Built by scanning commit words
/// (no CRC) as far as anyone needed, extended on demand, or loaded from the <c>.idx</c> side file.
/// </summary>
/// <remarks>
/// Entries loaded from a file are a hint: <see cref="Locate"/> says so, and the caller checks the CRC of
/// the frame it lands on (the CRC covers the sequence, so a wrong pair fails). Entries this process
/// scanned itself are exact. One lock (<c>_lock</c>) guards the entries and the scan frontier.
/// </remarks>
internal sealed class SegmentIndex
{
    private readonly object _lock = new();
    private readonly int _step;
    private readonly List<(int Record, int Offset)> _entries = [(0, SegmentLayout.FirstRecordOffset)];
    private int _scanRecord;                              // records scanned so far ...
    private int _scanOffset = SegmentLayout.FirstRecordOffset; // ... and the offset just past them
    private bool _complete;                               // the scan reached the end of the segment
    private FrameProblem? _bad;                           // the scan stopped at a frame no writer can have published
    private readonly bool _fromFile;

    public SegmentIndex(long segmentSize) => _step = IndexLayout.StepFor(segmentSize);

    private SegmentIndex(int step, List<(int, int)> entries, int records, int end)
    {
        _step = step;
        _entries = entries;
        _scanRecord = records;
        _scanOffset = end;
        _complete = true;
        _fromFile = true;
    }

    /// <summary>True once every record of the (sealed) segment is covered.</summary>
    public bool IsComplete { get { lock (_lock) return _complete; } }

    /// <summary>True when the entries came from a side file and must be checked where used.</summary>
    public bool IsHint => _fromFile;

    public int EntryCount { get { lock (_lock) return _entries.Count; } }

    /// <summary>
    /// The indexed position nearest at or before record <paramref name="recordNumber"/>, scanning forward
    /// (and adding entries) first if the index does not reach that far. The caller holds a reference on
    /// <paramref name="segment"/>.
    /// </summary>
    public (int Record, int Offset) Locate(Segment segment, int recordNumber)
    {
        lock (_lock)
        {
            if (!_complete && recordNumber > _scanRecord) ScanUnderIndexLock(segment, recordNumber);
            if (_scanRecord <= recordNumber) return (_scanRecord, _scanOffset);
            int lo = 0, hi = _entries.Count - 1;
            while (lo < hi)
            {
                int mid = (lo + hi + 1) >>> 1;
                if (_entries[mid].Record <= recordNumber) lo = mid; else hi = mid - 1;
            }
            return _entries[lo];
        }
    }

    /// <summary>
    /// Scans a sealed segment to its end, waiting for producers that reserved before the seal to publish
    /// (they always do: a failed copy publishes an aborted record).
    /// </summary>
    /// <exception cref="QueueCorruptedException">The scan met a frame no writer can have published (bytes written
    /// into the mapping from outside), past which it cannot tell whether producers finished.</exception>
    public void Complete(Segment segment, long expectedRecords)
    {
        if (!TryComplete(segment, expectedRecords))
            throw QueueCorruptedException.At(segment.Path, _scanOffset, _bad!.Value.Expected, _bad.Value.Found);
    }

    /// <summary>
    /// <see cref="Complete"/>, but false instead of an exception at a corrupt frame: the caller then cannot know
    /// whether producers that reserved past it are still copying (so it must not unmap the segment).
    /// </summary>
    public bool TryComplete(Segment segment, long expectedRecords)
    {
        var spin = new SpinWait();
        lock (_lock)
        {
            while (!_complete)
            {
                ScanUnderIndexLock(segment, int.MaxValue);
                if (_complete) break;
                if (_bad is not null) return false; // waiting would spin forever: nobody publishes over a corrupt frame
                if (_scanRecord >= expectedRecords) { _complete = true; break; } // sealed exactly at a record, no marker yet
                if (segment.ZeroWordIsCorruptAt(_scanOffset, segment.BaseSequence + _scanRecord))
                    ThrowStopped(segment, expectedRecords); // published here when the queue was opened: nobody will publish here now
                spin.SpinOnce();
            }
            return true;
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowStopped(Segment segment, long expectedRecords)
    {
        uint word = _scanOffset + SegmentLayout.RecordHeaderSize <= segment.Size ? segment.ReadWord(_scanOffset) : 0;
        throw QueueCorruptedException.At(segment.Path, _scanOffset,
            $"record {segment.BaseSequence + _scanRecord} of {expectedRecords}, which was published here when the queue was opened",
            $"commit word 0x{word:X8}");
    }

    private void ScanUnderIndexLock(Segment segment, int untilRecord)
    {
        System.Diagnostics.Debug.Assert(Monitor.IsEntered(_lock), "the scan needs the index's lock");
        // The cursor acquire-loads each commit word (pairs with PublishWord), so a length it sees is final.
        var cursor = new FrameCursor(segment.Bytes, _scanOffset, segment.BaseSequence + _scanRecord);
        int rec = _scanRecord;
        while (rec < untilRecord)
        {
            FrameKind kind = cursor.Read(verifyCrc: false);
            if (kind is FrameKind.EndOfSegment or FrameKind.SegmentFull) { _complete = true; break; }
            if (kind == FrameKind.Bad) { _bad = cursor.Problem; break; } // a reader at this frame reports it too
            if (kind is not (FrameKind.Payload or FrameKind.Aborted)) break; // nothing published yet
            if (cursor.Offset / _step > _entries[^1].Offset / _step) _entries.Add((rec, cursor.Offset));
            cursor.Advance();
            rec++;
        }
        _scanOffset = cursor.Offset;
        _scanRecord = rec;
    }

    /// <summary>Writes the side file (tmp, rename; no fsync: it is a hint and is rebuilt if lost).</summary>
    public void Write(string path, long baseSequence, Guid queueId, UnixFileMode fileMode)
    {
        byte[] bytes;
        lock (_lock)
        {
            if (!_complete) throw new InvalidOperationException($"index of {path} is not complete");
            bytes = new byte[IndexLayout.FileLength(_entries.Count)];
            IndexLayout.Write(bytes, new IndexLayout.Contents(baseSequence, _scanRecord, _scanOffset, _step, queueId, _entries));
        }
        QueueFiles.ReplaceAtomically(path, bytes, fileMode, durable: false); // a hint: a lost one is rebuilt
    }

    /// <summary>Loads a side file; null (with the reason) when it is missing or does not check out.</summary>
    /// <summary>The largest index file a valid one can be: one entry per page of the largest segment.</summary>
    private const int MaxFileBytes = IndexLayout.HeaderSize + IndexLayout.EntrySize * (int)(SegmentLayout.MaxSegmentSize / SegmentLayout.PageSize);

    public static SegmentIndex? TryLoad(string path, long baseSequence, long segmentSize, Guid queueId, out string problem)
    {
        byte[]? b;
        try
        {
            b = QueueFiles.TryReadAll(path, MaxFileBytes);
        }
        catch (QueueCorruptedException e) // not a regular file, or too long: a hint to rebuild (the rename replaces a link, never follows it)
        {
            problem = e.Message;
            return null;
        }
        if (b is null)
        {
            problem = "missing";
            return null;
        }
        if (!IndexLayout.TryRead(b, baseSequence, segmentSize, queueId, out IndexLayout.Contents index, out problem)) return null;
        return new SegmentIndex(index.Step, [.. index.Entries], (int)index.RecordCount, index.EndOffset);
    }
}
