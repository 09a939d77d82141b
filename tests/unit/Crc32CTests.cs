using System.IO.Hashing;
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

    [Fact]
    public void EqualsSystemIOHashingCrc32COnRandomInputsOfManyLengths()
    {
        var random = new Random(11);
        var data = new byte[200_000];
        random.NextBytes(data);
        for (int length = 0; length <= data.Length; length = length < 300 ? length + 1 : length * 5 / 4 + random.Next(8))
        {
            int start = random.Next(0, 9);
            ReadOnlySpan<byte> slice = data.AsSpan(start, Math.Min(length, data.Length - start));
            uint library = Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, slice);
            Assert.True(library == Crc32C.Compute(slice), $"length {slice.Length} at {start}: System.IO.Hashing 0x{library:X8}, ours 0x{Crc32C.Compute(slice):X8}");
        }
    }

    [Fact]
    public void InterleavedRecordChainsFindExactlyTheFirstFrameWhoseCrcDiffers()
    {
        // Frames of mixed lengths (0 to 1100 bytes: one chain below RecordCrcChains.FourChainMinLength, four above,
        // with tails past the common 8-byte words), written as the appender does.
        var random = new Random(5);
        var segment = new byte[256 * 1024];
        var offsets = new List<int>();
        int offset = SegmentLayout.FirstRecordOffset;
        for (long seq = 1000; offset + SegmentLayout.FrameLength(1100) <= segment.Length; seq++)
        {
            int length = random.Next(0, 1101);
            random.NextBytes(segment.AsSpan(offset + SegmentLayout.RecordHeaderSize, length));
            uint word = seq % 5 == 0 ? SegmentLayout.AbortedWord(length) : SegmentLayout.RecordWord(length);
            Frames.WriteCrc(segment, offset, seq, word, length);
            Frames.PublishCommitWord(segment, offset, word);
            offsets.Add(offset);
            offset += SegmentLayout.FrameLength(length);
        }
        Assert.Equal(offset, RecordCrcChains.Scan(segment, SegmentLayout.FirstRecordOffset, 1000, int.MaxValue, int.MaxValue, out int all, out int records));
        Assert.Equal(offsets.Count, all);
        Assert.Equal(offsets.Count - (offsets.Count + 4) / 5, records); // sequences 1000, 1005, ... are aborted
        foreach (int bad in new[] { 0, 1, 2, 3, 4, 5, 9, 10, 11, offsets.Count - 1 })
        {
            int at = offsets[bad] + SegmentLayout.RecordCrcOffset; // the stored CRC: flips whatever the length
            segment[at] ^= 0x40;
            Assert.Equal(offsets[bad], RecordCrcChains.Scan(segment, SegmentLayout.FirstRecordOffset, 1000, int.MaxValue, int.MaxValue, out int frames, out _));
            Assert.Equal(bad, frames);
            segment[at] ^= 0x40;
        }
        Assert.Equal(offsets[7], RecordCrcChains.Scan(segment, SegmentLayout.FirstRecordOffset, 1000, 7, int.MaxValue, out int limited, out _));
        Assert.Equal(7, limited);
    }
}
