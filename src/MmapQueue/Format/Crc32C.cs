using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace MmapQueues.Format;

/// <summary>
/// CRC32C (Castagnoli) with the SSE4.2 instruction: one dependency chain on a <c>ulong</c> state
/// (docs/MEASUREMENTS.md: ~9.7 GB/s; <c>BitOperations.Crc32C</c> adds a zero-extension and runs slower), and three
/// interleaved chains combined by carry-less shifts for long buffers. A table-driven path covers CPUs
/// without SSE4.2.
/// </summary>
internal static class Crc32C
{
    public const uint Seed = 0xFFFF_FFFF;

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Seed, data));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Finish(uint state) => ~state;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Append(uint state, ulong value) =>
        Sse42.X64.IsSupported ? (uint)Sse42.X64.Crc32(state, value) : Software.Append(state, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Append(uint state, uint value) =>
        Sse42.IsSupported ? Sse42.Crc32(state, value) : Software.Append(state, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        if (!Sse42.X64.IsSupported) return Software.Append(state, data);
        if (data.Length >= ThreeWay.MinLength) return ThreeWay.Append(state, data);
        return AppendOneChain(state, data);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint AppendOneChain(uint state, ReadOnlySpan<byte> data)
    {
        ulong crc = state;
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length, i = 0;
        for (; i + 32 <= n; i += 32)
        {
            crc = Sse42.X64.Crc32(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            crc = Sse42.X64.Crc32(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 8)));
            crc = Sse42.X64.Crc32(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 16)));
            crc = Sse42.X64.Crc32(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 24)));
        }
        for (; i + 8 <= n; i += 8)
            crc = Sse42.X64.Crc32(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
        uint c = (uint)crc;
        for (; i < n; i++)
            c = Sse42.Crc32(c, Unsafe.Add(ref p, i));
        return c;
    }

    /// <summary>Three independent chains over thirds of the buffer, joined with a precomputed shift.</summary>
    private static class ThreeWay
    {
        public const int MinLength = 3 * 1024;

        public static uint Append(uint state, ReadOnlySpan<byte> data)
        {
            while (data.Length >= MinLength)
            {
                // Block of 3 lanes, each a multiple of 8 bytes, at most 3 * 8 KiB so shift tables stay small.
                int lane = Math.Min(data.Length / 3, 8192) & ~7;
                ulong a = state, b = 0, c = 0;
                ref byte p = ref MemoryMarshal.GetReference(data);
                for (int i = 0; i < lane; i += 8)
                {
                    a = Sse42.X64.Crc32(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
                    b = Sse42.X64.Crc32(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, lane + i)));
                    c = Sse42.X64.Crc32(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 2 * lane + i)));
                }
                uint shift = ShiftFor(lane);
                state = MultiplyModP((uint)a, shift) ^ (uint)b;
                state = MultiplyModP(state, shift) ^ (uint)c;
                data = data[(3 * lane)..];
            }
            return AppendOneChain(state, data);
        }

        // x^(8*lane) mod P for every lane length (a multiple of 8, at most 8 KiB), computed on first use:
        // the square-and-multiply below costs ~1 µs, more than the CRC of a 4 KiB record itself.
        // 0 means "not yet" (x^k mod P is never 0: P has a constant term); a racing duplicate write is harmless.
        private static readonly uint[] LaneShifts = new uint[8192 / 8 + 1];

        /// <summary>The factor that advances a CRC state over <paramref name="lane"/> zero bytes.</summary>
        private static uint ShiftFor(int lane)
        {
            ref uint cached = ref LaneShifts[lane >> 3];
            if (cached == 0) cached = XPow8N(lane);
            return cached;
        }

        // x^(8n) mod P, by square-and-multiply over the reflected polynomial.
        private static uint XPow8N(int n)
        {
            uint result = 0x8000_0000; // x^0 in reflected form
            uint power = 0x0080_0000;  // x^8
            while (n != 0)
            {
                if ((n & 1) != 0) result = MultiplyModP(result, power);
                power = MultiplyModP(power, power);
                n >>= 1;
            }
            return result;
        }

        private static uint MultiplyModP(uint a, uint b)
        {
            const uint poly = 0x82F6_3B78;
            uint product = 0;
            for (int i = 0; i < 32; i++)
            {
                if ((a & 0x8000_0000) != 0) product ^= b;
                a <<= 1;
                b = (b & 1) != 0 ? (b >> 1) ^ poly : b >> 1;
            }
            return product;
        }
    }

    /// <summary>Table-driven fallback (about 1.8 GB/s); also the reference the tests compare against.</summary>
    internal static class Software
    {
        private static readonly uint[] Table = BuildTable();

        private static uint[] BuildTable()
        {
            var t = new uint[256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1;
                t[i] = c;
            }
            return t;
        }

        public static uint Append(uint state, ReadOnlySpan<byte> data)
        {
            foreach (byte b in data) state = Table[(state ^ b) & 0xFF] ^ (state >> 8);
            return state;
        }

        public static uint Append(uint state, ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, value);
            return Append(state, b);
        }

        public static uint Append(uint state, uint value)
        {
            Span<byte> b = stackalloc byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            return Append(state, b);
        }
    }
}
