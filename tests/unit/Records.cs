namespace MmapQueues.Tests;

/// <summary>Self-describing test payloads: content and length derive from the sequence.</summary>
internal static class Records
{
    public static byte[] Payload(long seq, int length)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte)(seq * 31 + i * 7 + 1);
        return b;
    }

    public static int LengthFor(long seq, int max = 300) => (int)((seq * 2654435761L) % max);

    public static MmapQueueOptions Small(FlushMode mode = FlushMode.Async, long segment = 64 * 1024) =>
        new() { SegmentSizeBytes = segment, FlushMode = mode };

    /// <summary>Reads everything from <paramref name="from"/> on and checks each payload against <see cref="Payload"/>.</summary>
    public static long ReadAllAndCheck(MmapQueue q, long from, Func<long, int> length)
    {
        using var r = q.OpenReader(from);
        long expect = from;
        while (r.TryRead(out var p))
        {
            Assert.True(p.SequenceEqual(Payload(expect, length(expect))), $"payload of sequence {expect} differs");
            expect++;
        }
        return expect;
    }
}
