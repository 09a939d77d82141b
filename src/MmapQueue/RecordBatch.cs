using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MmapQueues.Format;

namespace MmapQueues;

/// <summary>
/// A run of consecutive records from one segment, handed out by <see cref="QueueReader.TryReadBatch"/>: views
/// straight into the mapping (no copy), every CRC32C already checked. Enumerate it with <c>foreach</c>; the
/// views stay valid until the next read call on the reader that returned it (<see cref="QueueReader.TryRead"/>,
/// <see cref="QueueReader.TryReadBatch"/>, <see cref="QueueReader.Seek"/>) or its <see cref="QueueReader.Dispose"/>.
/// </summary>
public readonly ref struct RecordBatch
{
    private readonly ReadOnlySpan<byte> _segment; // the whole segment: frames at [_start, _end)
    private readonly int _start, _end;
    private readonly long _startSequence; // the sequence of the frame at _start (a record or an aborted claim)

    internal RecordBatch(ReadOnlySpan<byte> segment, int start, int end, long startSequence, long firstSequence, int count, long nextSequence)
    {
        _segment = segment;
        _start = start;
        _end = end;
        _startSequence = startSequence;
        FirstSequence = firstSequence;
        Count = count;
        NextSequence = nextSequence;
    }

    /// <summary>Records in the batch (aborted claims, which readers skip, are not counted).</summary>
    public int Count { get; }

    /// <summary>The sequence of the first record in the batch (meaningless when <see cref="Count"/> is 0).</summary>
    public long FirstSequence { get; }

    /// <summary>The sequence after the batch: where the reader now stands (<see cref="QueueReader.NextSequence"/>).</summary>
    public long NextSequence { get; }

    /// <summary>Walks the records in sequence order.</summary>
    public Enumerator GetEnumerator() => new(_segment, _start, _end, _startSequence);

    /// <summary>Steps over the frames of a <see cref="RecordBatch"/>, skipping aborted claims.</summary>
    public ref struct Enumerator
    {
        // Few fields, no span: the JIT keeps them in registers across a foreach (a span and a cached Current
        // measured about 4 ns per 64 B record, as much as the CRC check).
        private readonly ref byte _segment;
        private readonly int _end;
        private int _next;      // offset of the next frame to look at
        private int _at;        // offset of the current record's frame
        private int _length;    // its payload length
        private long _sequence; // the sequence of the frame at _next

        internal Enumerator(ReadOnlySpan<byte> segment, int start, int end, long startSequence)
        {
            _segment = ref MemoryMarshal.GetReference(segment);
            _next = start;
            _end = end;
            _sequence = startSequence;
        }

        /// <summary>The record the last <see cref="MoveNext"/> stepped onto.</summary>
        public readonly RecordView Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => new(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref _segment, _at + SegmentLayout.RecordHeaderSize), _length), _sequence - 1);
        }

        /// <summary>Steps to the next record; false past the last one.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool MoveNext()
        {
            while (_next < _end)
            {
                // TryReadBatch acquire-loaded every word of [start, end) and checked that each frame lies inside
                // the segment and matches its CRC, so this plain load and the unchecked slice above are in bounds.
                uint word = BinaryPrimitives.ReadUInt32LittleEndian(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref _segment, _next), sizeof(uint)));
                _at = _next;
                FrameKind kind = Frames.ClassifyWord(word, out _length);
                _next += SegmentLayout.FrameLength(_length);
                _sequence++;
                if (kind == FrameKind.Payload) return true; // an aborted claim is skipped, as TryRead does
            }
            return false;
        }
    }
}

/// <summary>One record of a <see cref="RecordBatch"/>: its payload (a view into the mapping) and its sequence.</summary>
public readonly ref struct RecordView
{
    internal RecordView(ReadOnlySpan<byte> payload, long sequence)
    {
        Payload = payload;
        Sequence = sequence;
    }

    /// <summary>The payload, valid as long as the batch it came from.</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The record's sequence.</summary>
    public long Sequence { get; }
}
