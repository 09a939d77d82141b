using System.Buffers.Binary;
using MmapQueues.Format;

namespace MmapQueues.Shipping;

/// <summary>
/// The shipping wire protocol. This comment is the only place it is drawn; the code uses the constants
/// and the encode/decode helpers below it.
/// </summary>
/// <remarks>
/// <code>
/// Shipping protocol, version 1. One full-duplex byte stream (TCP, or TLS through a Stream). Little-endian.
///
///   S -> R  HELLO                                   once, first
///   R -> S  RESUME                                  once; R flushed first, so its position is durable
///   S -> R  CHUNK* SYNC CHUNK* SYNC ... CHUNK* END  SYNC when S has caught up (follow mode), END to finish
///   R -> S  ACK                                     after every flush: every AckEveryBytes, each SYNC, END
///   either  ERROR                                   once, with the reason; then the sender of it closes
///
/// HELLO (48 bytes, S -> R)
///   0  u64  magic          "MMQSHIP1" (0x3150_4948_5351_4D4D)
///   8  u16  protocol       ProtocolVersion (1); any other value is refused
///  10  u16  segmentFormat  SegmentLayout.FormatVersion of the shipped segment files
///  12  u32  reserved       0
///  16  i64  segmentSize    bytes per segment file; a new replica adopts it, an existing one must match
///  24  16B  queueId        the source queue's id; a new replica adopts it, an existing one must match
///  40  i64  startBase      base sequence of the first segment to ship to an EMPTY replica
///
/// RESUME (48 bytes, R -> S)
///   0  u64  magic          "MMQSHIP1"
///   8  u16  protocol       1
///  10  u16  segmentFormat  SegmentLayout.FormatVersion
///  12  u32  offset         byte offset in that segment where the replica's next record goes (>= 64)
///  16  i64  nextSequence   the replica's next sequence (everything before it is durable there)
///  24  16B  queueId        the replica's queue id (equal to HELLO's)
///  40  i64  segmentBase    base sequence of the replica's active segment
///
/// Every later message, either direction: a 24-byte header, then `length` bytes of body.
///   0  u8   kind     1 CHUNK, 2 SYNC, 3 END (S -> R); 4 ACK (R -> S); 5 ERROR (either)
///   1  3B   reserved 0
///   4  u32  length   CHUNK: 1 .. segmentSize - offset; ERROR: 0 .. MaxErrorBytes (UTF-8 text); others: 0
///   8  i64  a        CHUNK: segment base sequence | SYNC, END: the sender's next sequence (all records
///                    before it were sent) | ACK: the replica's durable next sequence | ERROR: 0
///  16  i64  b        CHUNK: byte offset in the segment (>= 64) | others: 0
///
/// CHUNK body: the bytes [b, b + length) of the segment file starting at sequence a, exactly as in the
///   sender's file (SegmentLayout: whole or partial record frames, the END_OF_SEGMENT marker last when the
///   segment was sealed with one). The 64-byte segment header is never shipped: the replica writes its
///   own, identical because it carries the same size, base sequence and queue id. A segment's chunks are
///   contiguous; the next segment's first chunk starts at offset 64. Only published records are shipped;
///   the receiver checks each record's CRC32C and publishes its commit word last.
/// </code>
/// </remarks>
internal static class WireProtocol
{
    /// <summary>"MMQSHIP1" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3150_4948_5351_4D4D;
    public const ushort ProtocolVersion = 1;
    public const int HandshakeSize = 48;
    public const int HeaderSize = 24;
    public const int MaxErrorBytes = 1024;

    /// <summary>The sender cuts ranges into chunks of at most this many bytes.</summary>
    public const int MaxChunkBytes = 8 << 20;

    /// <summary>The receiver flushes and acknowledges at least every this many received bytes.</summary>
    public const long AckEveryBytes = 16 << 20;

    public enum Kind : byte { Chunk = 1, Sync = 2, End = 3, Ack = 4, Error = 5 }

    public readonly record struct Hello(long SegmentSize, Guid QueueId, long StartBase);
    public readonly record struct Resume(long NextSequence, Guid QueueId, long SegmentBase, int Offset);
    public readonly record struct Header(Kind Kind, int Length, long A, long B);

    public static void WriteHello(Span<byte> b, Hello h)
    {
        WriteHandshakePrefix(b);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], h.SegmentSize);
        h.QueueId.TryWriteBytes(b[24..40]);
        BinaryPrimitives.WriteInt64LittleEndian(b[40..], h.StartBase);
    }

    public static void WriteResume(Span<byte> b, Resume r)
    {
        WriteHandshakePrefix(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)r.Offset);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], r.NextSequence);
        r.QueueId.TryWriteBytes(b[24..40]);
        BinaryPrimitives.WriteInt64LittleEndian(b[40..], r.SegmentBase);
    }

    private static void WriteHandshakePrefix(Span<byte> b)
    {
        b[..HandshakeSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(b, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], ProtocolVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(b[10..], (ushort)SegmentLayout.FormatVersion);
    }

    /// <summary>Decodes and bounds-checks a HELLO; throws <see cref="ShippingProtocolException"/> naming the field.</summary>
    public static Hello ReadHello(ReadOnlySpan<byte> b)
    {
        CheckHandshakePrefix(b, "HELLO");
        if (BinaryPrimitives.ReadUInt32LittleEndian(b[12..]) != 0)
            throw ShippingProtocolException.Field("HELLO", 12, "reserved 0", $"{BinaryPrimitives.ReadUInt32LittleEndian(b[12..])}");
        long size = BinaryPrimitives.ReadInt64LittleEndian(b[16..]);
        if (size < SegmentLayout.MinSegmentSize || size > SegmentLayout.MaxSegmentSize || size % SegmentLayout.PageSize != 0)
            throw ShippingProtocolException.Field("HELLO", 16,
                $"a segment size from {SegmentLayout.MinSegmentSize} to {SegmentLayout.MaxSegmentSize}, a multiple of {SegmentLayout.PageSize}", $"{size}");
        var id = new Guid(b.Slice(24, 16));
        if (id == Guid.Empty) throw ShippingProtocolException.Field("HELLO", 24, "a queue id", "the empty Guid");
        long start = BinaryPrimitives.ReadInt64LittleEndian(b[40..]);
        if (start < 0) throw ShippingProtocolException.Field("HELLO", 40, "a start sequence >= 0", $"{start}");
        return new Hello(size, id, start);
    }

    /// <summary>Decodes and bounds-checks a RESUME against the sender's segment size.</summary>
    public static Resume ReadResume(ReadOnlySpan<byte> b, long segmentSize)
    {
        CheckHandshakePrefix(b, "RESUME");
        int offset = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b[12..]), int.MaxValue);
        if (offset < SegmentLayout.FirstRecordOffset || offset > segmentSize || offset % SegmentLayout.RecordAlignment != 0)
            throw ShippingProtocolException.Field("RESUME", 12,
                $"a record offset from {SegmentLayout.FirstRecordOffset} to {segmentSize}, a multiple of {SegmentLayout.RecordAlignment}", $"{offset}");
        long next = BinaryPrimitives.ReadInt64LittleEndian(b[16..]);
        long segBase = BinaryPrimitives.ReadInt64LittleEndian(b[40..]);
        if (segBase < 0 || next < segBase)
            throw ShippingProtocolException.Field("RESUME", 16, $"a next sequence >= the segment base ({segBase}) >= 0", $"{next}");
        return new Resume(next, new Guid(b.Slice(24, 16)), segBase, offset);
    }

    private static void CheckHandshakePrefix(ReadOnlySpan<byte> b, string what)
    {
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (magic != Magic) throw ShippingProtocolException.Field(what, 0, $"magic 0x{Magic:X16} (\"MMQSHIP1\")", $"0x{magic:X16}");
        ushort protocol = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
        if (protocol != ProtocolVersion) throw ShippingProtocolException.Field(what, 8, $"protocol version {ProtocolVersion}", $"{protocol}");
        ushort format = BinaryPrimitives.ReadUInt16LittleEndian(b[10..]);
        if (format != SegmentLayout.FormatVersion)
            throw ShippingProtocolException.Field(what, 10, $"segment format version {SegmentLayout.FormatVersion}", $"{format}");
    }

    public static void WriteHeader(Span<byte> b, Kind kind, int length, long a, long c)
    {
        b[..HeaderSize].Clear();
        b[0] = (byte)kind;
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)length);
        BinaryPrimitives.WriteInt64LittleEndian(b[8..], a);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], c);
    }

    /// <summary>Decodes a message header; checks the kind, the reserved bytes and the length bound of its kind.</summary>
    public static Header ReadHeader(ReadOnlySpan<byte> b, long segmentSize)
    {
        var kind = (Kind)b[0];
        if (kind is < Kind.Chunk or > Kind.Error)
            throw ShippingProtocolException.Field("message header", 0, "a kind from 1 to 5", $"{b[0]}");
        if (b[1] != 0 || b[2] != 0 || b[3] != 0)
            throw ShippingProtocolException.Field("message header", 1, "reserved zeros", $"0x{b[1]:X2}{b[2]:X2}{b[3]:X2}");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]);
        long limit = kind switch
        {
            Kind.Chunk => segmentSize - SegmentLayout.FirstRecordOffset,
            Kind.Error => MaxErrorBytes,
            _ => 0,
        };
        if (length > limit || (kind == Kind.Chunk && length == 0))
            throw ShippingProtocolException.Field($"{kind} header", 4, kind == Kind.Chunk ? $"a length from 1 to {limit}" : $"a length of at most {limit}", $"{length}");
        return new Header(kind, (int)length, BinaryPrimitives.ReadInt64LittleEndian(b[8..]), BinaryPrimitives.ReadInt64LittleEndian(b[16..]));
    }
}
