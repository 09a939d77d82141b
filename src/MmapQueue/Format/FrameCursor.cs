using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace MmapQueues.Format;

/// <summary>
/// The one frame walker: a position (offset, sequence) in a segment's bytes that says what lies there and
/// steps over records. Recovery, the index build, the flusher, export, the inspector and the index-hint
/// check walk with it; none of them decodes a commit word itself. <c>QueueReader.TryRead</c> alone steps by
/// hand over the same <see cref="Frames.Classify"/>: the cursor cost it 15-17 % for 64 B records (measured).
/// </summary>
/// <remarks>
/// <para><see cref="Read"/> classifies the frame at the position without moving: a record, an aborted claim,
/// the end marker, <see cref="FrameKind.Claimed"/> (a claim in progress: not yet, but its length is known),
/// <see cref="FrameKind.Empty"/> (a zero commit word: nothing published yet, or the end of a torn tail), <see cref="FrameKind.SegmentFull"/> (no room for a frame header), or
/// <see cref="FrameKind.Bad"/> with <see cref="Problem"/> saying what was expected and what was found at
/// <see cref="Offset"/>. <see cref="Advance"/> then steps over a record or an aborted claim.</para>
/// <para>The commit word is acquire-loaded (<see cref="Frames.LoadCommitWord"/>), so the cursor may walk a
/// live mapping: every byte of a frame whose word it sees is final. Over a private buffer the load costs
/// nothing extra on x64 or arm64.</para>
/// <para>The bytes are the segment from offset 0, possibly only a prefix of it (the inspector reads the file
/// in growing windows): <see cref="RequiredEnd"/> says how far the bytes must reach to classify the frame
/// at the position, and <see cref="Extend"/> continues over a longer prefix.</para>
/// </remarks>
internal ref struct FrameCursor
{
    private ReadOnlySpan<byte> _bytes;
    private int _payloadLength;

    /// <summary>A cursor at <paramref name="offset"/> (8-byte aligned, at least the first record offset), whose frame holds <paramref name="sequence"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FrameCursor(ReadOnlySpan<byte> segment, int offset, long sequence)
    {
        _bytes = segment;
        Offset = offset;
        Sequence = sequence;
    }

    /// <summary>Offset of the frame at the position.</summary>
    public int Offset { readonly get; private set; }

    /// <summary>The sequence the frame at the position holds (or, for the end marker, the next segment's first).</summary>
    public long Sequence { readonly get; private set; }

    /// <summary>What the last <see cref="Read"/> found.</summary>
    public FrameKind Kind { readonly get; private set; }

    /// <summary>When <see cref="Kind"/> is <see cref="FrameKind.Bad"/>: what was expected at <see cref="Offset"/> and what was found.</summary>
    /// <remarks>Worked out again when asked (a cold path), so the cursor holds no references and costs the reader nothing to set up.</remarks>
    public readonly FrameProblem? Problem
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Kind == FrameKind.Bad ? Frames.Diagnose(_bytes, Offset, Sequence) : null;
    }

    /// <summary>The payload of the record just read (empty for an aborted claim); valid as long as the bytes are.</summary>
    public readonly ReadOnlySpan<byte> Payload
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _bytes.Slice(Offset + SegmentLayout.RecordHeaderSize, _payloadLength);
    }

    /// <summary>Where the records end if the walk stops here: past the end marker, else at <see cref="Offset"/>.</summary>
    public readonly int End => Kind == FrameKind.EndOfSegment ? Offset + SegmentLayout.RecordHeaderSize : Offset;

    /// <summary>
    /// How far the bytes must reach to classify the frame at the position: its header, then (once the commit
    /// word is in) the whole frame. More than the bytes hold only when they are a prefix of the segment.
    /// </summary>
    public readonly long RequiredEnd
    {
        get
        {
            if (Offset + SegmentLayout.RecordHeaderSize > _bytes.Length) return Offset + SegmentLayout.RecordHeaderSize;
            FrameKind k = Frames.ClassifyWord(Frames.LoadCommitWord(_bytes, Offset), out int length);
            return k is FrameKind.Empty or FrameKind.Bad ? Offset + SegmentLayout.RecordHeaderSize : (long)Offset + SegmentLayout.FrameLength(length);
        }
    }

    /// <summary>
    /// Classifies the frame at the position (see <see cref="FrameKind"/>); does not move. With
    /// <paramref name="verifyCrc"/> a record's CRC is checked (the end marker's always is).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FrameKind Read(bool verifyCrc)
    {
        int off = Offset;
        uint word = off + SegmentLayout.RecordHeaderSize <= _bytes.Length ? Frames.LoadCommitWord(_bytes, off) : 0;
        FrameKind kind = Frames.Classify(_bytes, off, word, Sequence, verifyCrc, out _payloadLength, out _);
        Kind = kind;
        return kind;
    }

    /// <summary>Steps over the record or aborted claim just read: the position moves to the next frame and sequence.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance()
    {
        Debug.Assert(Kind is FrameKind.Payload or FrameKind.Aborted, $"Advance over a {Kind} frame at offset {Offset}");
        Offset += SegmentLayout.FrameLength(_payloadLength);
        Sequence++;
    }

    /// <summary>Continues over a longer prefix of the same segment (same position); call <see cref="Read"/> again.</summary>
    public void Extend(ReadOnlySpan<byte> longer)
    {
        Debug.Assert(longer.Length >= _bytes.Length, "a cursor only extends over more of its segment");
        _bytes = longer;
    }
}
