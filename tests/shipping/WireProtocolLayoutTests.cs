using System.Buffers.Binary;

namespace MmapQueues.Tests.Shipping;

/// <summary>Pins the wire messages: sizes, every field's offset, little-endian order (a change here breaks every peer).</summary>
public class WireProtocolLayoutTests
{
    private static readonly Guid Id = new("00112233-4455-6677-8899-aabbccddeeff");

    [Fact]
    public void HelloPutsEveryFieldAtItsDrawnOffsetLittleEndian()
    {
        var b = new byte[WireProtocol.HelloSize];
        byte[] nonce = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        WireProtocol.WriteHello(b, new WireProtocol.Hello(0x0102_0304_0506_0708, Id, 0x1112_1314_1516_1718), WireProtocol.Auth.SharedSecret, nonce);
        Assert.Equal(80, b.Length);
        Assert.Equal("MMQSHIP1"u8.ToArray(), b[0..8]);
        Assert.Equal(new byte[] { 3, 0 }, b[8..10]); // protocol 3
        Assert.Equal(new byte[] { 2, 0 }, b[10..12]); // segment format 2
        Assert.Equal((byte)WireProtocol.Message.Hello, b[12]);
        Assert.Equal((byte)WireProtocol.Auth.SharedSecret, b[13]);
        Assert.Equal(new byte[] { 0, 0 }, b[14..16]);
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4, 3, 2, 1 }, b[16..24]);
        Assert.Equal(Id.ToByteArray(), b[24..40]);
        Assert.Equal(new byte[] { 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11 }, b[40..48]);
        Assert.Equal(nonce, b[48..80]);
    }

    [Fact]
    public void ResumeAndHeaderPutEveryFieldAtItsDrawnOffset()
    {
        var r = new byte[WireProtocol.ResumeSize];
        WireProtocol.WriteResume(r, new WireProtocol.Resume(0x0A0B, Id, 0x0C0D, 0x0E0F_1000), WireProtocol.Auth.Tls);
        Assert.Equal(56, r.Length);
        Assert.Equal((byte)WireProtocol.Message.Resume, r[12]);
        Assert.Equal((byte)WireProtocol.Auth.Tls, r[13]);
        Assert.Equal(0x0A0B, BinaryPrimitives.ReadInt64LittleEndian(r.AsSpan(16)));
        Assert.Equal(0x0C0D, BinaryPrimitives.ReadInt64LittleEndian(r.AsSpan(24)));
        Assert.Equal(0x0E0F_1000u, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(32)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(36)));
        Assert.Equal(Id.ToByteArray(), r[40..56]);

        var h = new byte[WireProtocol.HeaderSize];
        WireProtocol.WriteHeader(h, WireProtocol.Kind.Chunk, 0x0102_0304, 0x1122, 0x3344);
        Assert.Equal(24, h.Length);
        Assert.Equal(new byte[] { 1, 0, 0, 0, 4, 3, 2, 1 }, h[0..8]);
        Assert.Equal(0x1122, BinaryPrimitives.ReadInt64LittleEndian(h.AsSpan(8)));
        Assert.Equal(0x3344, BinaryPrimitives.ReadInt64LittleEndian(h.AsSpan(16)));
        Assert.Equal(new WireProtocol.Header(WireProtocol.Kind.Chunk, 0x0102_0304, 0x1122, 0x3344), WireProtocol.ReadHeader(h, 1L << 30));
    }

    [Fact]
    public void HandshakeMessagesHaveTheirDrawnSizes()
    {
        Assert.Equal((80, 80, 48, 56, 16), (WireProtocol.HelloSize, WireProtocol.ChallengeSize, WireProtocol.ProofSize, WireProtocol.ResumeSize, WireProtocol.PrefixSize));
        Assert.Equal(WireProtocol.ChallengeSize, WireProtocol.HandshakeField.ChallengeMac + WireProtocol.MacSize);
        Assert.Equal(WireProtocol.ProofSize, WireProtocol.HandshakeField.ProofMac + WireProtocol.MacSize);
        Assert.Equal(WireProtocol.HelloSize, WireProtocol.HandshakeField.HelloNonce + WireProtocol.NonceSize);
    }
}
