using System.Runtime.CompilerServices;
using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues;

/// <summary>
/// Reads records in sequence order, as views straight into the mapped segment (no copy). Not thread-safe:
/// one reader per thread; open as many as you like.
/// </summary>
/// <remarks>
/// A reader opened with <see cref="MmapQueue.OpenReader(string)"/> is a <b>named consumer</b>: it starts
/// at the position its name last committed, and <see cref="Commit"/> makes its progress durable. Delivery
/// is <b>at-least-once</b>: after a crash (or a <see cref="Dispose"/> without <see cref="Commit"/>) the
/// consumer resumes at its last committed position, so the records it read after that commit are read
/// again. A reader holds the segment it is on: retention never deletes a segment under a live view.
/// </remarks>
public sealed partial class QueueReader : IDisposable
{
    private readonly MmapQueue _queue;
    private readonly string? _name; // the named consumer, or null for an anonymous reader
    private Segment? _segment; // holds a reference (mapping pinned) while non-null
    private int _offset;       // offset of the frame for sequence _sequence within _segment
    private long _sequence;    // sequence of the frame at _offset
    private long _target;      // the first sequence TryRead may return (records before it are skipped)
    private bool _disposed;
    private ReaderLease? _lease; // a read-only queue's reader: pins _segment against the writer's retention (MmapQueue.ReadOnly.cs)

    internal QueueReader(MmapQueue queue, string? name)
    {
        _queue = queue;
        _name = name;
        _sequence = -1;
    }

    /// <summary>The sequence of the record the next successful <see cref="TryRead"/> returns.</summary>
    public long NextSequence => Math.Max(_sequence, _target);

    /// <summary>
    /// Returns the next record if one is visible. <paramref name="payload"/> points into the memory-mapped
    /// segment (no copy) and stays valid until the next read call on this reader (<see cref="TryRead"/>,
    /// <see cref="TryReadBatch"/>, <see cref="Seek"/>) or its <see cref="Dispose"/>; copy it if you need it longer.
    /// Its CRC32C was checked.
    /// </summary>
    /// <returns>false when the reader has caught up with the writer.</returns>
    /// <exception cref="QueueCorruptedException">The next record fails its checks; the exception names the file and offset.</exception>
    public bool TryRead(out ReadOnlySpan<byte> payload)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (true)
        {
            Segment? seg = _segment;
            if (seg is null) break; // disposed
            // Not written with FrameCursor (nor is the batch scan, RecordCrcChains.Scan): the same Frames.Classify, stepped by hand. The cursor
            // measured 15-17 % slower here for 64 B records (BenchmarkDotNet ReadBenchmarks, alternating runs,
            // benchmarks/RESULTS.md "One frame walker"): its extra state spills registers on this path.
            Span<byte> bytes = seg.Bytes;
            uint word = _offset + SegmentLayout.RecordHeaderSize <= bytes.Length ? seg.ReadWord(_offset) : 0; // acquire: pairs with PublishWord
            FrameKind kind = Frames.Classify(bytes, _offset, word, _sequence, verifyCrc: _sequence >= _target, out int length, out FrameProblem? problem);
            switch (kind)
            {
                case FrameKind.Payload when _sequence >= _target:
                    payload = bytes.Slice(_offset + SegmentLayout.RecordHeaderSize, length);
                    _offset += SegmentLayout.FrameLength(length);
                    _sequence++;
                    return true;
                case FrameKind.Payload:
                case FrameKind.Aborted:
                    _offset += SegmentLayout.FrameLength(length);
                    _sequence++;
                    continue;
                case FrameKind.Empty or FrameKind.Claimed when seg.ZeroWordIsCorruptAt(_offset, _sequence):
                    ThrowCorrupt(seg, seg.ZeroWordProblem(_offset, _sequence, word));
                    break;
                case FrameKind.Empty:
                case FrameKind.Claimed: // a producer is writing this record: not yet (its length is known, its payload is not)
                    if (seg.IsReaderView && SkipVanished(seg)) continue; // a read-only queue's segment the writer recycled
                    payload = default;
                    return false;
                case FrameKind.EndOfSegment:
                case FrameKind.SegmentFull:
                    if (!MoveToNextSegment()) break;
                    continue;
                default:
                    if (SkipVanished(seg, force: true)) continue; // not corruption: the writer recycled it and wrote a later lap
                    ThrowCorrupt(seg, problem!.Value);
                    break;
            }
            break;
        }
        payload = default;
        return false;
    }

    /// <summary>
    /// Waits until a record is visible (true), or the queue is disposed (false), without spinning a core.
    /// </summary>
    public async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (HasVisibleRecord()) return true;
            if (_queue.IsDisposed) return false;
            await _queue.WaitForPublishAsync(HasVisibleRecord, cancellationToken).ConfigureAwait(false);
        }
    }

    private bool HasVisibleRecord()
    {
        if (_disposed || _queue.IsDisposed) return false;
        // Peek without consuming: TryRead advances, so look at the word the next TryRead would see.
        Segment? seg = _segment;
        if (seg is null) return false;
        if (_offset + SegmentLayout.RecordHeaderSize > seg.Size) return NextSegmentListed();
        uint word = seg.ReadWord(_offset);
        FrameKind kind = Frames.ClassifyWord(word, out _);
        if (kind == FrameKind.EndOfSegment) return NextSegmentListed();
        // Not yet, unless a zero word or a claim there is corruption: then let TryRead report it.
        if (kind is FrameKind.Empty or FrameKind.Claimed) return seg.ZeroWordIsCorruptAt(_offset, _sequence) || seg.HasVanished();
        return true;
    }

    private bool MoveToNextSegment()
    {
        // A read-only queue's lease still names a sequence in this segment: it pins the next one too while it is mapped.
        Segment? next = _queue.SegmentStartingAt(_sequence);
        if (next is null) return SkipDroppedRecords(); // normally: the writer sealed this one and has not listed the next yet
        if (!next.TryAcquire()) return SkipDroppedRecords(); // a limit dropped it just now
        _segment!.Release();
        _segment = next;
        _queue.PinLease(ref _lease, _sequence); // moved forward once in: this segment stays pinned, the one left is not
        _offset = SegmentLayout.FirstRecordOffset;
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowCorrupt(Segment seg, FrameProblem problem) =>
        throw QueueCorruptedException.At(seg.Path, _offset, problem.Expected, problem.Found);

    /// <summary>
    /// Releases the segment the last view pointed into; views from this reader are invalid afterwards. A
    /// named consumer does <b>not</b> commit here: what it read since its last <see cref="Commit"/> is
    /// delivered again when it reopens (at-least-once).
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _segment?.Release();
        _segment = null;
        _lease?.Dispose();
        if (_name is not null) _queue.CloseConsumer(_name);
    }
}
