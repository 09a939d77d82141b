using System.Buffers.Binary;

namespace MmapQueues.Crash;

/// <summary>
/// The self-describing records the crash child appends and the checkers verify. A record's payload is
/// derived entirely from its tag: <c>u64 tag</c>, then filler bytes whose count and values come from a
/// hash of the tag. A tag packs (run, producer, k): k counts the producer's records within one child run,
/// so a single producer's k equals its sequence minus the run's first sequence.
/// </summary>
/// <remarks>Compiled into both the child and the test assembly, so both sides derive the same bytes.</remarks>
internal static class TestRecord
{
    public const int TagBytes = 8;

    public static long Tag(int run, int producer, long k) => ((long)run << 40) | ((long)producer << 32) | k;
    public static int Run(long tag) => (int)(tag >>> 40);
    public static int Producer(long tag) => (int)((tag >>> 32) & 0xFF);
    public static long K(long tag) => tag & 0xFFFF_FFFF;

    /// <summary>Payload length for <paramref name="tag"/>: from 8 to 8 + <paramref name="maxExtra"/> bytes.</summary>
    public static int Length(long tag, int maxExtra) => TagBytes + (int)(Mix(tag) % (ulong)(maxExtra + 1));

    /// <summary>Writes the payload of <paramref name="tag"/> into <paramref name="dest"/> (exactly <see cref="Length"/> bytes).</summary>
    public static void Fill(long tag, Span<byte> dest)
    {
        BinaryPrimitives.WriteInt64LittleEndian(dest, tag);
        ulong x = Mix(tag ^ 0x5DEECE66DL) | 1;
        for (int i = TagBytes; i < dest.Length; i++)
        {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17; // xorshift64
            dest[i] = (byte)x;
        }
    }

    /// <summary>
    /// Checks that <paramref name="payload"/> is exactly what <see cref="Fill"/> makes for the tag it
    /// carries. Returns null when intact, else what is wrong (for the failure message).
    /// </summary>
    public static string? Verify(ReadOnlySpan<byte> payload, int maxExtra, out long tag)
    {
        tag = -1;
        if (payload.Length < TagBytes) return $"payload of {payload.Length} bytes is shorter than a tag";
        tag = BinaryPrimitives.ReadInt64LittleEndian(payload);
        int expected = Length(tag, maxExtra);
        if (payload.Length != expected) return $"tag 0x{tag:X}: expected {expected} bytes, found {payload.Length}";
        Span<byte> want = expected <= 4096 ? stackalloc byte[expected] : new byte[expected];
        Fill(tag, want);
        int diff = payload.CommonPrefixLength(want);
        return diff == expected ? null : $"tag 0x{tag:X}: byte {diff} is 0x{payload[diff]:X2}, expected 0x{want[diff]:X2}";
    }

    private static ulong Mix(long v)
    {
        ulong z = (ulong)v + 0x9E3779B97F4A7C15UL; // splitmix64 finalizer
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
