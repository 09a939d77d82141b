namespace MmapQueues.Tests;

/// <summary>
/// The one payload generator of the test projects: a record's bytes and (optionally) its length derive from
/// its sequence, so any reader can check what it got without keeping a copy.
/// </summary>
public static class TestPayloads
{
    /// <summary>The payload of <paramref name="sequence"/> with <paramref name="length"/> bytes.</summary>
    public static byte[] For(long sequence, int length)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte)(sequence * 31 + i * 7 + 1);
        return b;
    }

    /// <summary>A length from 0 to <paramref name="max"/> - 1 that varies with <paramref name="sequence"/>.</summary>
    public static int LengthFor(long sequence, int max = 300) => (int)((sequence * 2654435761L) % max);

    /// <summary>True when <paramref name="payload"/> is exactly what <see cref="For"/> makes for <paramref name="sequence"/>.</summary>
    public static bool Matches(ReadOnlySpan<byte> payload, long sequence, int length) => payload.SequenceEqual(For(sequence, length));
}
