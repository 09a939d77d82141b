using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace MmapQueues.Format;

/// <summary>
/// Finds how far a run of published frames reaches and checks their CRCs on the way, four frames at a time in
/// four independent dependency chains (the SSE4.2 <c>crc32</c> instruction has a latency of about three cycles
/// and a throughput of one per cycle), for payloads long enough to gain (<see cref="FourChainMinLength"/>). Used by <c>QueueReader.TryReadBatch</c>, which steps by hand like
/// <c>TryRead</c> (see <see cref="FrameCursor"/>); the value checked is exactly <see cref="SegmentLayout.RecordCrc"/>.
/// </summary>
internal static class RecordCrcChains
{
    /// <summary>
    /// Four chains only from this payload length on. Below it, one record's chain is short enough (10 steps for
    /// 64 B) that the CPU's out-of-order window already overlaps consecutive records, and the grouping cost more
    /// than it saved (64 B: 5-10 % slower; 128-256 B: level within the noise; 1 KiB: 10-25 % faster; measured on a
    /// loaded 2-vCPU VM, see benchmarks/RESULTS.md "Batch reads").
    /// </summary>
    public const int FourChainMinLength = 512;

    /// <summary>
    /// Walks at most <paramref name="maxFrames"/> records and aborted claims from <paramref name="offset"/> (whose
    /// frame holds <paramref name="sequence"/>), each with an acquire load of its commit word, a check that it lies
    /// inside <paramref name="segment"/> and a check of its CRC. Stops before the first frame that is anything else
    /// (empty, the end marker, bad, or a CRC mismatch): the caller classifies that one with the full checks.
    /// </summary>
    /// <remarks>A run stops once it covers <paramref name="maxBytes"/> (it always takes its first frame).</remarks>
    /// <returns>The offset where the run ends; <paramref name="frames"/> frames lie before it, <paramref name="records"/> of them records.</returns>
    public static int Scan(ReadOnlySpan<byte> segment, int offset, long sequence, int maxFrames, int maxBytes, out int frames, out int records)
    {
        int n = 0, r = 0;
        int stopAt = (int)Math.Min(segment.Length, (long)offset + Math.Max(maxBytes, 1));
        while (n < maxFrames && offset < stopAt && Published(segment, offset, out uint w0))
        {
            if (Sse42.X64.IsSupported && Length(w0) >= FourChainMinLength && n + 4 <= maxFrames)
            {
                int o1 = offset + FrameLength(w0);
                if (Published(segment, o1, out uint w1) && Published(segment, o1 + FrameLength(w1), out uint w2)
                    && Published(segment, o1 + FrameLength(w1) + FrameLength(w2), out uint w3)
                    && FourChainsMatch(segment, offset, sequence + n, w0, w1, w2, w3))
                {
                    offset = o1 + FrameLength(w1) + FrameLength(w2) + FrameLength(w3);
                    n += 4;
                    r += IsRecord(w0) + IsRecord(w1) + IsRecord(w2) + IsRecord(w3);
                    continue;
                }
                // Fewer than four frames, or one of them failed: the first is checked alone below, then the next group.
            }
            if (!Matches(segment, offset, sequence + n, w0)) break;
            offset += FrameLength(w0);
            n++;
            r += IsRecord(w0);
        }
        frames = n;
        records = r;
        return offset;
    }

    /// <summary>A record or an aborted claim whose frame lies inside the segment (acquire load: pairs with PublishCommitWord).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Published(ReadOnlySpan<byte> segment, int offset, out uint word)
    {
        word = 0;
        if (offset + SegmentLayout.RecordHeaderSize > segment.Length) return false;
        word = Frames.LoadCommitWord(segment, offset);
        return Frames.ClassifyWord(word, out int length) is FrameKind.Payload or FrameKind.Aborted
               && (long)offset + SegmentLayout.FrameLength(length) <= segment.Length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FrameLength(uint word) => SegmentLayout.FrameLength(Length(word));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Length(uint word) => Frames.PayloadLength(word);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int IsRecord(uint word) => Frames.ClassifyWord(word, out _) == FrameKind.Payload ? 1 : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Stored(ReadOnlySpan<byte> segment, int offset) =>
        BinaryPrimitives.ReadUInt32LittleEndian(segment[(offset + SegmentLayout.RecordCrcOffset)..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Matches(ReadOnlySpan<byte> segment, int offset, long sequence, uint word) =>
        SegmentLayout.RecordCrc(sequence, word, segment.Slice(offset + SegmentLayout.RecordHeaderSize, Length(word))) == Stored(segment, offset);

    /// <summary>The four consecutive frames from <paramref name="o0"/> (sequences s..s+3), already checked to lie inside the segment.</summary>
    private static bool FourChainsMatch(ReadOnlySpan<byte> segment, int o0, long s, uint w0, uint w1, uint w2, uint w3)
    {
        int o1 = o0 + FrameLength(w0), o2 = o1 + FrameLength(w1), o3 = o2 + FrameLength(w2);
        int l0 = Length(w0), l1 = Length(w1), l2 = Length(w2), l3 = Length(w3);
        // The same steps as SegmentLayout.RecordCrc: seed, the u64 sequence, the u32 word, then the payload.
        ulong c0 = Crc32C.Append(Crc32C.Append(Crc32C.Seed, (ulong)s), w0);
        ulong c1 = Crc32C.Append(Crc32C.Append(Crc32C.Seed, (ulong)(s + 1)), w1);
        ulong c2 = Crc32C.Append(Crc32C.Append(Crc32C.Seed, (ulong)(s + 2)), w2);
        ulong c3 = Crc32C.Append(Crc32C.Append(Crc32C.Seed, (ulong)(s + 3)), w3);
        ref byte p = ref MemoryMarshal.GetReference(segment);
        ref byte p0 = ref Unsafe.Add(ref p, o0 + SegmentLayout.RecordHeaderSize), p1 = ref Unsafe.Add(ref p, o1 + SegmentLayout.RecordHeaderSize);
        ref byte p2 = ref Unsafe.Add(ref p, o2 + SegmentLayout.RecordHeaderSize), p3 = ref Unsafe.Add(ref p, o3 + SegmentLayout.RecordHeaderSize);
        // Whole 8-byte words common to all four payloads (every frame lies inside the segment).
        nuint common = (nuint)(Math.Min(Math.Min(l0, l1), Math.Min(l2, l3)) & ~7);
        for (nuint i = 0; i < common; i += 8)
        {
            c0 = Sse42.X64.Crc32(c0, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p0, i)));
            c1 = Sse42.X64.Crc32(c1, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p1, i)));
            c2 = Sse42.X64.Crc32(c2, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p2, i)));
            c3 = Sse42.X64.Crc32(c3, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p3, i)));
        }
        int k = (int)common;
        return Finish(segment, o0, l0, k, (uint)c0) == Stored(segment, o0)
               & Finish(segment, o1, l1, k, (uint)c1) == Stored(segment, o1)
               & Finish(segment, o2, l2, k, (uint)c2) == Stored(segment, o2)
               & Finish(segment, o3, l3, k, (uint)c3) == Stored(segment, o3);
    }

    /// <summary>Appends the payload bytes past the <paramref name="done"/> already covered and finishes the CRC.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Finish(ReadOnlySpan<byte> segment, int offset, int length, int done, uint state) =>
        Crc32C.Finish(length == done ? state : Tail(segment.Slice(offset + SegmentLayout.RecordHeaderSize + done, length - done), state));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static uint Tail(ReadOnlySpan<byte> rest, uint state) => Crc32C.Append(state, rest);
}
