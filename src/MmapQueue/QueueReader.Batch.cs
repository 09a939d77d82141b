using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class QueueReader
{
    /// <summary>
    /// Hands out the visible records from the reader's position on, up to <paramref name="maxRecords"/>, as one
    /// <see cref="RecordBatch"/> of views into the mapped segment (no copy, no allocation). Their CRC32Cs are
    /// checked before the call returns, four records at a time in independent chains, which is what makes a
    /// batch faster than as many <see cref="TryRead"/> calls for a consumer draining a backlog.
    /// </summary>
    /// <remarks>
    /// <para>The views stay valid until the next read call on this reader (<see cref="TryRead"/>,
    /// <see cref="TryReadBatch"/>, <see cref="Seek"/>) or <see cref="Dispose"/>, as for <see cref="TryRead"/>:
    /// a batch never spans a segment boundary, so the one segment the reader holds keeps them mapped.</para>
    /// <para>The reader moves past the whole batch at once: <see cref="NextSequence"/> is
    /// <see cref="RecordBatch.NextSequence"/>, and a named consumer's <see cref="Commit"/> after it commits past
    /// every record of the batch. Aborted records are skipped, as <see cref="TryRead"/> skips them.</para>
    /// <para>Corruption: a record that fails its checks is never handed out. The records before it are: the batch
    /// stops just before the bad record, and the next call (of either kind) throws
    /// <see cref="QueueCorruptedException"/> naming the file and offset, as <see cref="TryRead"/> does there.</para>
    /// </remarks>
    /// <param name="batch">The records; empty (Count 0) when the call returns false.</param>
    /// <param name="maxRecords">The most records to hand out (at least 1). The default 1024 keeps a batch of small
    /// records within the CPU's L2 cache between the check and the consumer's pass.</param>
    /// <returns>false when the reader has caught up with the writer.</returns>
    /// <exception cref="QueueCorruptedException">The next record fails its checks; the exception names the file and offset.</exception>
    public bool TryReadBatch(out RecordBatch batch, int maxRecords = 1024)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRecords);
        while (_segment is { } seg)
        {
            Span<byte> bytes = seg.Bytes;
            int start = _offset, offset = start;
            long startSequence = _sequence, sequence = startSequence;
            int count = 0;
            // 1. The commit words (acquire loads: pair with PublishWord) say how far the run reaches.
            while (count < maxRecords && offset + SegmentLayout.RecordHeaderSize <= bytes.Length)
            {
                FrameKind kind = Frames.ClassifyWord(seg.ReadWord(offset), out int length);
                if (kind is not (FrameKind.Payload or FrameKind.Aborted) || (long)offset + SegmentLayout.FrameLength(length) > bytes.Length)
                    break; // the end of the run: classified below with the full checks TryRead makes
                offset += SegmentLayout.FrameLength(length);
                sequence++;
                if (sequence <= _target) { start = offset; startSequence = sequence; } // before a Seek's target: stepped over unchecked
                else if (kind == FrameKind.Payload) count++;
            }
            // 2. Their CRCs, in interleaved chains; the run ends before the first mismatch.
            int checkedEnd = RecordCrcChains.FirstMismatch(bytes, start, offset, startSequence);
            if (checkedEnd < offset) (offset, sequence, count) = Prefix(bytes, start, startSequence, checkedEnd);
            if (count > 0)
            {
                batch = new RecordBatch(bytes, start, offset, startSequence, FirstRecord(bytes, start, startSequence), count, sequence);
                _offset = offset;
                _sequence = sequence;
                return true;
            }
            // 3. No record before the end of the run (aborted claims and skipped ones are passed): what is there?
            _offset = offset;
            _sequence = sequence;
            uint word = offset + SegmentLayout.RecordHeaderSize <= bytes.Length ? seg.ReadWord(offset) : 0;
            switch (Frames.Classify(bytes, offset, word, sequence, verifyCrc: true, out _, out FrameProblem? problem))
            {
                case FrameKind.Empty when seg.RecoveredComplete:
                    ThrowCorrupt(seg, new("a record or the end marker (the segment was complete when the queue was opened)", "a zero commit word"));
                    break;
                case FrameKind.Empty:
                    break;
                case FrameKind.EndOfSegment:
                case FrameKind.SegmentFull:
                    if (MoveToNextSegment()) continue;
                    break;
                default: // Bad (or a record whose CRC failed in step 2)
                    ThrowCorrupt(seg, problem ?? new("a record", "a frame that changed while it was read"));
                    break;
            }
            break;
        }
        batch = default;
        return false;
    }

    /// <summary>Where the run ends when it stops at <paramref name="end"/>: that offset, its sequence, and the records before it.</summary>
    private static (int Offset, long Sequence, int Count) Prefix(ReadOnlySpan<byte> bytes, int offset, long sequence, int end)
    {
        int count = 0;
        while (offset < end)
        {
            if (Frames.ClassifyWord(Frames.LoadCommitWord(bytes, offset), out int length) == FrameKind.Payload) count++;
            offset += SegmentLayout.FrameLength(length);
            sequence++;
        }
        return (offset, sequence, count);
    }

    /// <summary>The sequence of the first record (not an aborted claim) from <paramref name="offset"/> on; the run holds one.</summary>
    private static long FirstRecord(ReadOnlySpan<byte> bytes, int offset, long sequence)
    {
        while (Frames.ClassifyWord(Frames.LoadCommitWord(bytes, offset), out int length) != FrameKind.Payload)
        {
            offset += SegmentLayout.FrameLength(length);
            sequence++;
        }
        return sequence;
    }
}
