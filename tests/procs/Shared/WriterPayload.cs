using System.Buffers.Binary;

namespace MmapQueues.Tests.Procs;

/// <summary>The payload of record <c>sequence</c> in the cross-process tests: its sequence, then 0..49 bytes that depend on it.</summary>
internal static class WriterPayload
{
    public static byte[] For(long sequence)
    {
        var payload = new byte[8 + (int)(sequence % 50)];
        BinaryPrimitives.WriteInt64LittleEndian(payload, sequence);
        payload.AsSpan(8).Fill((byte)(sequence * 31));
        return payload;
    }

    /// <summary>True when <paramref name="payload"/> is exactly the payload of record <paramref name="sequence"/> (never a stale or other record's).</summary>
    public static bool Matches(ReadOnlySpan<byte> payload, long sequence) => payload.SequenceEqual(For(sequence));
}
