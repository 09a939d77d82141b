using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace MmapQueues.Format;

/// <summary>
/// Checks the CRCs of a run of consecutive frames four at a time, in four independent dependency chains: the
/// SSE4.2 <c>crc32</c> instruction has a latency of about three cycles and a throughput of one per cycle, so
/// one record's chain leaves two thirds of the unit idle, and four records side by side fill it. Used by
/// <c>QueueReader.TryReadBatch</c>; the value checked is exactly <see cref="SegmentLayout.RecordCrc"/>.
/// </summary>
internal static class RecordCrcChains
{
    /// <summary>
    /// Checks the frames in [<paramref name="offset"/>, <paramref name="end"/>), the first holding
    /// <paramref name="sequence"/>. The caller has classified every commit word there as a record or an aborted
    /// claim whose frame lies inside <paramref name="segment"/>, with an acquire load (so the bytes are final).
    /// </summary>
    /// <returns>The offset of the first frame whose stored CRC differs, or <paramref name="end"/> when all match.</returns>
    public static int FirstMismatch(ReadOnlySpan<byte> segment, int offset, int end, long sequence)
    {
        if (Sse42.X64.IsSupported)
        {
            while (offset < end)
            {
                int o1 = Next(segment, offset), o2 = o1 < end ? Next(segment, o1) : end, o3 = o2 < end ? Next(segment, o2) : end;
                if (o3 >= end) break; // fewer than four frames left
                int bad = FourChains(segment, offset, o1, o2, o3, sequence);
                if (bad >= 0) return bad;
                offset = Next(segment, o3);
                sequence += 4;
            }
        }
        for (; offset < end; offset = Next(segment, offset), sequence++)
            if (!Matches(segment, offset, sequence)) return offset;
        return end;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Word(ReadOnlySpan<byte> segment, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(segment[offset..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Length(uint word) => (int)(word & SegmentLayout.LengthMask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Next(ReadOnlySpan<byte> segment, int offset) => offset + SegmentLayout.FrameLength(Length(Word(segment, offset)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Stored(ReadOnlySpan<byte> segment, int offset) =>
        BinaryPrimitives.ReadUInt32LittleEndian(segment[(offset + SegmentLayout.RecordCrcOffset)..]);

    private static bool Matches(ReadOnlySpan<byte> segment, int offset, long sequence)
    {
        uint word = Word(segment, offset);
        ReadOnlySpan<byte> payload = segment.Slice(offset + SegmentLayout.RecordHeaderSize, Length(word));
        return SegmentLayout.RecordCrc(sequence, word, payload) == Stored(segment, offset);
    }

    /// <summary>The four frames at o0..o3 (sequences s..s+3): -1 when every CRC matches, else the first bad offset.</summary>
    private static int FourChains(ReadOnlySpan<byte> segment, int o0, int o1, int o2, int o3, long s)
    {
        uint w0 = Word(segment, o0), w1 = Word(segment, o1), w2 = Word(segment, o2), w3 = Word(segment, o3);
        int l0 = Length(w0), l1 = Length(w1), l2 = Length(w2), l3 = Length(w3);
        // The same steps as SegmentLayout.RecordCrc: seed, the u64 sequence, the u32 word, then the payload.
        ulong c0 = Sse42.X64.Crc32(Crc32C.Seed, (ulong)s), c1 = Sse42.X64.Crc32(Crc32C.Seed, (ulong)(s + 1));
        ulong c2 = Sse42.X64.Crc32(Crc32C.Seed, (ulong)(s + 2)), c3 = Sse42.X64.Crc32(Crc32C.Seed, (ulong)(s + 3));
        c0 = Sse42.Crc32((uint)c0, w0);
        c1 = Sse42.Crc32((uint)c1, w1);
        c2 = Sse42.Crc32((uint)c2, w2);
        c3 = Sse42.Crc32((uint)c3, w3);
        ref byte p = ref MemoryMarshal.GetReference(segment);
        ref byte p0 = ref Unsafe.Add(ref p, o0 + SegmentLayout.RecordHeaderSize), p1 = ref Unsafe.Add(ref p, o1 + SegmentLayout.RecordHeaderSize);
        ref byte p2 = ref Unsafe.Add(ref p, o2 + SegmentLayout.RecordHeaderSize), p3 = ref Unsafe.Add(ref p, o3 + SegmentLayout.RecordHeaderSize);
        // Whole 8-byte words common to all four payloads: every frame was checked to lie inside the segment.
        nuint common = (nuint)(Math.Min(Math.Min(l0, l1), Math.Min(l2, l3)) & ~7);
        for (nuint i = 0; i < common; i += 8)
        {
            c0 = Sse42.X64.Crc32(c0, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p0, i)));
            c1 = Sse42.X64.Crc32(c1, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p1, i)));
            c2 = Sse42.X64.Crc32(c2, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p2, i)));
            c3 = Sse42.X64.Crc32(c3, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p3, i)));
        }
        int k = (int)common;
        if (Finish(segment, o0, l0, k, (uint)c0) != Stored(segment, o0)) return o0;
        if (Finish(segment, o1, l1, k, (uint)c1) != Stored(segment, o1)) return o1;
        if (Finish(segment, o2, l2, k, (uint)c2) != Stored(segment, o2)) return o2;
        if (Finish(segment, o3, l3, k, (uint)c3) != Stored(segment, o3)) return o3;
        return -1;
    }

    /// <summary>Appends the payload bytes past the <paramref name="done"/> already covered and finishes the CRC.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Finish(ReadOnlySpan<byte> segment, int offset, int length, int done, uint state) =>
        Crc32C.Finish(length == done ? state : Crc32C.Append(state, segment.Slice(offset + SegmentLayout.RecordHeaderSize + done, length - done)));
}
