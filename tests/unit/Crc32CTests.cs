using MmapQueues.Format;

namespace MmapQueues.Tests;

public class Crc32CTests
{
    [Fact]
    public void KnownCheckValueMatches()
    {
        // The CRC-32C check value: CRC of the ASCII digits "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void HardwarePathsMatchTheTableForEveryLengthUpTo64KiB()
    {
        // Covers the one-chain path, the three-lane path (3 KiB and more) with every lane length, and the
        // lane-shift cache being reused across lengths and calls.
        var data = new byte[65536 + 17];
        new Random(7).NextBytes(data);
        for (int round = 0; round < 2; round++)
        for (int length = 0; length <= 65536; length += length < 4096 ? 1 : 97)
        {
            ReadOnlySpan<byte> slice = data.AsSpan(round, length);
            uint expected = ~Crc32C.Software.Append(Crc32C.Seed, slice);
            Assert.True(expected == Crc32C.Compute(slice), $"length {length}, offset {round}: expected 0x{expected:X8}, found 0x{Crc32C.Compute(slice):X8}");
        }
    }
}
