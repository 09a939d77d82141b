using System.Buffers.Binary;
using MmapQueues.Format;

namespace MmapQueues.Tests;

/// <summary>The one frame walker: what it says about each kind of frame, and where and why a frame is bad.</summary>
public class FrameCursorTests
{
    private const int SegmentSize = 4096;
    private const long Base = 1000;

    /// <summary>A segment image built frame by frame, as the writer lays it out.</summary>
    private sealed class SegmentImage
    {
        public readonly byte[] Bytes = new byte[SegmentSize];
        public int Offset = SegmentLayout.FirstRecordOffset;
        public long Sequence = Base;

        public int Record(string text) => Put(SegmentLayout.RecordWord(text.Length), System.Text.Encoding.UTF8.GetBytes(text));

        public int Aborted(int length) => Put(SegmentLayout.AbortedWord(length), new byte[length]);

        public int EndMarker() => Put(SegmentLayout.EndOfSegmentWord, [], advance: false);

        private int Put(uint word, byte[] payload, bool advance = true)
        {
            int at = Offset;
            payload.CopyTo(Bytes, at + SegmentLayout.RecordHeaderSize);
            Frames.WriteCrc(Bytes, at, Sequence, word, payload.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(at), word);
            if (advance)
            {
                Offset += SegmentLayout.FrameLength(payload.Length);
                Sequence++;
            }
            return at;
        }
    }

    [Fact]
    public void WalksRecordsAndAbortedClaimsThenStopsAtTheEndMarker()
    {
        var image = new SegmentImage();
        image.Record("alpha");
        image.Aborted(3);
        image.Record("");
        int markerAt = image.EndMarker();

        var cursor = new FrameCursor(image.Bytes, SegmentLayout.FirstRecordOffset, Base);
        Assert.Equal(FrameKind.Payload, cursor.Read(verifyCrc: true));
        Assert.Equal("alpha", System.Text.Encoding.UTF8.GetString(cursor.Payload));
        Assert.Equal(Base, cursor.Sequence);
        cursor.Advance();
        Assert.Equal(FrameKind.Aborted, cursor.Read(verifyCrc: true));
        Assert.Equal(Base + 1, cursor.Sequence);
        cursor.Advance();
        Assert.Equal(FrameKind.Payload, cursor.Read(verifyCrc: true));
        Assert.Equal(0, cursor.Payload.Length);
        cursor.Advance();
        Assert.Equal(FrameKind.EndOfSegment, cursor.Read(verifyCrc: false));
        Assert.Equal(markerAt, cursor.Offset);
        Assert.Equal(Base + 3, cursor.Sequence); // the marker carries the next segment's first sequence
        Assert.Equal(markerAt + SegmentLayout.RecordHeaderSize, cursor.End);
        Assert.Null(cursor.Problem);
    }

    [Fact]
    public void AZeroCommitWordIsEmptyAndTheRecordsEndThere()
    {
        var image = new SegmentImage();
        int emptyAt = image.Offset + SegmentLayout.FrameLength(5);
        image.Record("first");
        var cursor = new FrameCursor(image.Bytes, SegmentLayout.FirstRecordOffset, Base);
        cursor.Read(verifyCrc: true);
        cursor.Advance();
        Assert.Equal(FrameKind.Empty, cursor.Read(verifyCrc: true));
        Assert.Equal(emptyAt, cursor.Offset);
        Assert.Equal(emptyAt, cursor.End);
        Assert.Null(cursor.Problem);
    }

    [Fact]
    public void NoRoomForAFrameHeaderIsSegmentFull()
    {
        var image = new SegmentImage();
        var cursor = new FrameCursor(image.Bytes, SegmentSize, Base); // the last record ended exactly at the end
        Assert.Equal(FrameKind.SegmentFull, cursor.Read(verifyCrc: true));
        Assert.Equal(SegmentSize, cursor.End);
        Assert.Null(cursor.Problem);
    }

    [Fact]
    public void ACorruptedPayloadIsBadWithItsCrcAndOffset()
    {
        var image = new SegmentImage();
        image.Record("one");
        int second = image.Record("two");
        image.Bytes[second + SegmentLayout.RecordHeaderSize] ^= 0x01;

        var cursor = new FrameCursor(image.Bytes, SegmentLayout.FirstRecordOffset, Base);
        cursor.Read(verifyCrc: true);
        cursor.Advance();
        Assert.Equal(FrameKind.Bad, cursor.Read(verifyCrc: true));
        Assert.Equal(second, cursor.Offset);
        FrameProblem problem = Assert.NotNull(cursor.Problem);
        Assert.StartsWith("CRC32C 0x", problem.Expected);
        Assert.Contains($"for sequence {Base + 1} (length 3)", problem.Expected);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(image.Bytes.AsSpan(second + SegmentLayout.RecordCrcOffset));
        Assert.Equal($"0x{stored:X8}", problem.Found);
    }

    [Fact]
    public void WithoutTheCrcCheckACorruptedPayloadPassesButACorruptedEndMarkerDoesNot()
    {
        var image = new SegmentImage();
        int first = image.Record("one");
        int markerAt = image.EndMarker();
        image.Bytes[first + SegmentLayout.RecordHeaderSize] ^= 0x01;
        image.Bytes[markerAt + SegmentLayout.RecordCrcOffset] ^= 0x01;

        var cursor = new FrameCursor(image.Bytes, SegmentLayout.FirstRecordOffset, Base);
        Assert.Equal(FrameKind.Payload, cursor.Read(verifyCrc: false));
        cursor.Advance();
        Assert.Equal(FrameKind.Bad, cursor.Read(verifyCrc: false));
        Assert.Equal(markerAt, cursor.Offset);
        Assert.Contains($"for sequence {Base + 1} (length 0)", cursor.Problem!.Value.Expected);
    }

    [Fact]
    public void ALengthThatRunsPastTheSegmentIsBad()
    {
        var image = new SegmentImage();
        int at = image.Record("x");
        BinaryPrimitives.WriteUInt32LittleEndian(image.Bytes.AsSpan(at), SegmentLayout.RecordWord(SegmentSize));

        var cursor = new FrameCursor(image.Bytes, at, Base);
        Assert.Equal(FrameKind.Bad, cursor.Read(verifyCrc: false));
        Assert.Equal(at, cursor.Offset);
        Assert.Equal(new FrameProblem($"a record that ends inside the segment ({SegmentSize} bytes)", $"length {SegmentSize}"), cursor.Problem);
    }

    [Theory]
    [InlineData(0x0000_0005u)] // length without PUBLISHED
    [InlineData(0xC000_0005u)] // END_OF_SEGMENT with a length
    [InlineData(0xE000_0000u)] // END_OF_SEGMENT and ABORTED together
    [InlineData(0x6000_0000u)] // CLAIMED and ABORTED together
    [InlineData(0x2000_0005u)] // ABORTED without PUBLISHED
    public void FlagsMmapQueueNeverWritesAreBad(uint word)
    {
        var image = new SegmentImage();
        BinaryPrimitives.WriteUInt32LittleEndian(image.Bytes.AsSpan(SegmentLayout.FirstRecordOffset), word);
        var cursor = new FrameCursor(image.Bytes, SegmentLayout.FirstRecordOffset, Base);
        Assert.Equal(FrameKind.Bad, cursor.Read(verifyCrc: false));
        Assert.Equal(new FrameProblem("a commit word with flags PUBLISHED[|ABORTED|END_OF_SEGMENT], or CLAIMED", $"0x{word:X8}"), cursor.Problem);
        Assert.Equal(FrameKind.Bad, Frames.ClassifyWord(word, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(1000)]
    public void AClaimWordIsAClaimWhoseLengthIsKnownAndTheCursorDoesNotStepOverIt(int length)
    {
        var image = new SegmentImage();
        Frames.StoreClaim(image.Bytes, SegmentLayout.FirstRecordOffset, Base, length);
        Assert.Equal(0x4000_0000u | (uint)length, Frames.LoadCommitWord(image.Bytes, SegmentLayout.FirstRecordOffset));
        var cursor = new FrameCursor(image.Bytes, SegmentLayout.FirstRecordOffset, Base);
        Assert.Equal(FrameKind.Claimed, cursor.Read(verifyCrc: true)); // no record CRC is asked of a claim
        Assert.Equal(length, cursor.Payload.Length);
        Assert.Equal(SegmentLayout.FirstRecordOffset + SegmentLayout.FrameLength(length), cursor.RequiredEnd);
        uint word = SegmentLayout.ClaimedWord(length);
        Assert.True(Frames.ClaimHolds(image.Bytes, SegmentLayout.FirstRecordOffset, word, Base));
        Assert.False(Frames.ClaimHolds(image.Bytes, SegmentLayout.FirstRecordOffset, word, Base + 1)); // the claim CRC covers the sequence
        Assert.Equal(SegmentLayout.RecordCrc(Base, word, default), SegmentLayout.ClaimCrc(Base, word));
    }

    [Fact]
    public void OverAPrefixTheCursorSaysHowFarTheBytesMustReach()
    {
        var image = new SegmentImage();
        int at = image.Record(new string('p', 100));
        int frameEnd = at + SegmentLayout.FrameLength(100);

        var cursor = new FrameCursor(image.Bytes.AsSpan(0, at), at, Base);
        Assert.Equal(FrameKind.SegmentFull, cursor.Read(verifyCrc: true)); // the prefix ends before the header
        Assert.Equal(at + SegmentLayout.RecordHeaderSize, cursor.RequiredEnd);
        cursor.Extend(image.Bytes.AsSpan(0, at + SegmentLayout.RecordHeaderSize));
        Assert.Equal(FrameKind.Bad, cursor.Read(verifyCrc: true)); // the header is in, the payload is not
        Assert.Equal(frameEnd, cursor.RequiredEnd);
        cursor.Extend(image.Bytes.AsSpan(0, frameEnd));
        Assert.Equal(FrameKind.Payload, cursor.Read(verifyCrc: true));
        Assert.Equal(frameEnd, cursor.RequiredEnd);
    }

    [Fact]
    public void ASealedEndIsTrustedOnlyWhenTheMarkerBeforeTheWatermarkNamesTheNextSequence()
    {
        var image = new SegmentImage();
        image.Record("a");
        int markerAt = image.EndMarker();
        int durableEnd = markerAt + SegmentLayout.RecordHeaderSize;
        ReadBytesAt read = (offset, into) =>
        {
            image.Bytes.AsSpan((int)offset, into.Length).CopyTo(into);
            return true;
        };
        Assert.Equal(durableEnd, Frames.SealedEnd(durableEnd, SegmentSize, Base + 1, read));
        Assert.Null(Frames.SealedEnd(durableEnd, SegmentSize, Base + 2, read)); // another next sequence: not this marker
        Assert.Null(Frames.SealedEnd(markerAt, SegmentSize, Base + 1, read));   // the watermark stops before the marker
        Assert.Null(Frames.SealedEnd(durableEnd + 4, SegmentSize, Base + 1, read)); // misaligned
        Assert.Equal(SegmentSize, Frames.SealedEnd(SegmentSize, SegmentSize, Base + 1, (_, _) => throw new InvalidOperationException("nothing to read")));
    }
}
