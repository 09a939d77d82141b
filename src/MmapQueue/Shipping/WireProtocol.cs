using System.Buffers.Binary;
using MmapQueues.Format;

namespace MmapQueues.Shipping;

/// <summary>
/// The shipping wire protocol. This comment is the only place it is drawn; the code encodes and decodes
/// through the named offsets below it (<see cref="WireProtocol.HandshakeField"/>, <see cref="WireProtocol.HeaderField"/>).
/// </summary>
/// <remarks>
/// <code>
/// Shipping protocol, version 3 (2 carried v1 segments; 3 v2 ones). One full-duplex byte stream (TCP, or TLS). Little-endian.
///
///   S -> R  HELLO                                   once, first
///   R -> S  CHALLENGE                               shared-secret mode only
///   S -> R  PROOF                                   shared-secret mode only
///   R -> S  RESUME                                  once; R flushed first, so its position is durable
///   S -> R  CHUNK* SYNC CHUNK* SYNC ... CHUNK* END  SYNC when S has caught up (follow mode; repeated as a
///                                                   heartbeat while idle), END to finish
///   R -> S  ACK                                     after every flush: every AckEveryBytes, each SYNC, END
///   either  ERROR                                   once, a short code; then the sender of it closes
///
/// Every handshake message starts with a 16-byte prefix:
///   0  u64  magic          "MMQSHIP1" (0x3150_4948_5351_4D4D); its first byte is never an ERROR kind (5)
///   8  u16  protocol       ProtocolVersion (3); any other value is refused with ERROR "version", both versions named
///  10  u16  segmentFormat  SegmentLayout.FormatVersion (2): the replica's segment headers are of this version
///                          (the frames shipped are the same in segment versions 1 and 2)
///  12  u8   message        1 HELLO, 2 CHALLENGE, 3 PROOF, 4 RESUME
///  13  u8   auth           0 none, 1 shared secret, 2 TLS: both sides must agree
///  14  u16  reserved       0
///
/// HELLO (80 bytes, S -> R)
///  16  i64  segmentSize    bytes per segment file; a new replica adopts it (up to its cap), an existing one must match
///  24  16B  queueId        the source queue's id; a new replica adopts it (or must equal its pinned id)
///  40  i64  startBase      base sequence of the first segment to ship to an EMPTY replica (0 .. MaxSequence)
///  48  32B  nonce          the sender's random nonce (shared-secret mode; zeros otherwise)
///
/// CHALLENGE (80 bytes, R -> S)
///  16  32B  nonce          the receiver's random nonce
///  48  32B  mac            HMAC-SHA256(key, "mmapq shipping v2 receiver" | HELLO | CHALLENGE bytes [0, 48))
///
/// PROOF (48 bytes, S -> R)
///  16  32B  mac            HMAC-SHA256(key, "mmapq shipping v2 sender" | HELLO | CHALLENGE)
///                          (the labels keep protocol 2's "v2"; the HELLO bytes they cover carry the version)
///
/// RESUME (56 bytes, R -> S)
///  16  i64  nextSequence   the replica's next sequence (everything before it is durable there)
///  24  i64  segmentBase    base sequence of the replica's active segment
///  32  u32  offset         byte offset in that segment where the replica's next record goes (>= 64)
///  36  u32  reserved       0
///  40  16B  queueId        the replica's queue id (equal to HELLO's)
///
/// Every later message, either direction: a 24-byte header, then `length` bytes of body.
///   0  u8   kind     1 CHUNK, 2 SYNC, 3 END (S -> R); 4 ACK (R -> S); 5 ERROR (either)
///   1  3B   reserved 0
///   4  u32  length   CHUNK: 1 .. segmentSize - offset; ERROR: 0 .. MaxErrorBytes (ASCII code); others: 0
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
///
/// ERROR body: a short ASCII code and a fixed sentence (ShippingErrorCode), never a position or a path.
/// </code>
/// The MACs bind the whole transcript (both nonces, the queue id, sizes and start), and the two labels
/// differ, so a receiver's MAC reflected back as a PROOF, or a PROOF replayed into a new session (a new
/// receiver nonce), fails. The mode authenticates the handshake only: the stream after it is plain TCP.
/// </remarks>
internal static class WireProtocol
{
    /// <summary>"MMQSHIP1" read as a little-endian u64.</summary>
    public const ulong Magic = 0x3150_4948_5351_4D4D;
    public const ushort ProtocolVersion = 3;
    public const int PrefixSize = 16;
    public const int HelloSize = 80;
    public const int ChallengeSize = 80;
    public const int ProofSize = 48;
    public const int ResumeSize = 56;
    public const int NonceSize = 32;
    public const int MacSize = 32;
    public const int HeaderSize = 24;
    public const int MaxErrorBytes = 256;

    /// <summary>No sequence on the wire may exceed this (2^62): sums of sequences and record counts cannot overflow.</summary>
    public const long MaxSequence = 1L << 62;

    /// <summary>The sender cuts ranges into chunks of at most this many bytes.</summary>
    public const int MaxChunkBytes = 8 << 20;

    /// <summary>The receiver flushes and acknowledges at least every this many received bytes.</summary>
    public const long AckEveryBytes = 16 << 20;

    /// <summary>Named byte offsets of the handshake messages (drawn above).</summary>
    public static class HandshakeField
    {
        public const int Magic = 0, Protocol = 8, SegmentFormat = 10, Message = 12, Auth = 13, Reserved = 14;
        public const int HelloSegmentSize = 16, HelloQueueId = 24, HelloStartBase = 40, HelloNonce = 48;
        public const int ChallengeNonce = 16, ChallengeMac = 48;
        public const int ProofMac = 16;
        public const int ResumeNext = 16, ResumeSegmentBase = 24, ResumeOffset = 32, ResumeReserved = 36, ResumeQueueId = 40;
    }

    /// <summary>Named byte offsets of the message header (drawn above).</summary>
    public static class HeaderField
    {
        public const int Kind = 0, Reserved = 1, Length = 4, A = 8, B = 16;
    }

    public enum Kind : byte { Chunk = 1, Sync = 2, End = 3, Ack = 4, Error = 5 }
    public enum Message : byte { Hello = 1, Challenge = 2, Proof = 3, Resume = 4 }
    public enum Auth : byte { None = 0, SharedSecret = 1, Tls = 2 }

    public readonly record struct Hello(long SegmentSize, Guid QueueId, long StartBase);
    public readonly record struct Resume(long NextSequence, Guid QueueId, long SegmentBase, int Offset);
    public readonly record struct Header(Kind Kind, int Length, long A, long B);

    public static int SizeOf(Message m) => m switch
    {
        Message.Hello => HelloSize,
        Message.Challenge => ChallengeSize,
        Message.Proof => ProofSize,
        _ => ResumeSize,
    };

    public static void WritePrefix(Span<byte> b, Message message, Auth auth)
    {
        b[..SizeOf(message)].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(b[HandshakeField.Magic..], Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(b[HandshakeField.Protocol..], ProtocolVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(b[HandshakeField.SegmentFormat..], (ushort)SegmentLayout.FormatVersion);
        b[HandshakeField.Message] = (byte)message;
        b[HandshakeField.Auth] = (byte)auth;
    }

    /// <summary>
    /// Checks a handshake prefix: magic, protocol version, segment format, that it is the expected
    /// message, in the expected authentication mode. Throws naming the field; a version mismatch carries
    /// the code "version", a mode mismatch "auth-mode".
    /// </summary>
    public static void CheckPrefix(ReadOnlySpan<byte> b, Message expected, Auth auth)
    {
        string what = expected.ToString().ToUpperInvariant();
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(b[HandshakeField.Magic..]);
        if (magic != Magic) throw ShippingProtocolException.Field(what, HandshakeField.Magic, $"magic 0x{Magic:X16} (\"MMQSHIP1\")", $"0x{magic:X16}");
        ushort protocol = BinaryPrimitives.ReadUInt16LittleEndian(b[HandshakeField.Protocol..]);
        if (protocol != ProtocolVersion)
            throw ShippingProtocolException.Field(what, HandshakeField.Protocol, $"protocol version {ProtocolVersion}", $"{protocol} (the peer speaks shipping protocol {protocol}: another mmapq version)", ShippingErrorCode.Version);
        ushort format = BinaryPrimitives.ReadUInt16LittleEndian(b[HandshakeField.SegmentFormat..]);
        if (format != SegmentLayout.FormatVersion)
            throw ShippingProtocolException.Field(what, HandshakeField.SegmentFormat, $"segment format version {SegmentLayout.FormatVersion}", $"{format}", ShippingErrorCode.Version);
        if (b[HandshakeField.Message] != (byte)expected)
            throw ShippingProtocolException.Field(what, HandshakeField.Message, $"message {(byte)expected} ({what})", $"{b[HandshakeField.Message]}");
        if (b[HandshakeField.Auth] != (byte)auth)
            throw ShippingProtocolException.Field(what, HandshakeField.Auth, $"authentication mode {auth}", $"{(Auth)b[HandshakeField.Auth]}", ShippingErrorCode.AuthMode);
        if (BinaryPrimitives.ReadUInt16LittleEndian(b[HandshakeField.Reserved..]) != 0)
            throw ShippingProtocolException.Field(what, HandshakeField.Reserved, "reserved 0", $"{BinaryPrimitives.ReadUInt16LittleEndian(b[HandshakeField.Reserved..])}");
    }

    public static void WriteHello(Span<byte> b, Hello h, Auth auth, ReadOnlySpan<byte> nonce)
    {
        WritePrefix(b, Message.Hello, auth);
        BinaryPrimitives.WriteInt64LittleEndian(b[HandshakeField.HelloSegmentSize..], h.SegmentSize);
        h.QueueId.TryWriteBytes(b.Slice(HandshakeField.HelloQueueId, 16));
        BinaryPrimitives.WriteInt64LittleEndian(b[HandshakeField.HelloStartBase..], h.StartBase);
        nonce.CopyTo(b.Slice(HandshakeField.HelloNonce, NonceSize));
    }

    /// <summary>Decodes and bounds-checks the fields of a HELLO whose prefix was checked.</summary>
    public static Hello ReadHello(ReadOnlySpan<byte> b)
    {
        long size = BinaryPrimitives.ReadInt64LittleEndian(b[HandshakeField.HelloSegmentSize..]);
        if (size < SegmentLayout.MinSegmentSize || size > SegmentLayout.MaxSegmentSize || size % SegmentLayout.PageSize != 0)
            throw ShippingProtocolException.Field("HELLO", HandshakeField.HelloSegmentSize,
                $"a segment size from {SegmentLayout.MinSegmentSize} to {SegmentLayout.MaxSegmentSize}, a multiple of {SegmentLayout.PageSize}", $"{size}");
        var id = new Guid(b.Slice(HandshakeField.HelloQueueId, 16));
        if (id == Guid.Empty) throw ShippingProtocolException.Field("HELLO", HandshakeField.HelloQueueId, "a queue id", "the empty Guid");
        long start = BinaryPrimitives.ReadInt64LittleEndian(b[HandshakeField.HelloStartBase..]);
        if (start is < 0 or > MaxSequence)
            throw ShippingProtocolException.Field("HELLO", HandshakeField.HelloStartBase, $"a start sequence from 0 to {MaxSequence}", $"{start}");
        return new Hello(size, id, start);
    }

    public static void WriteResume(Span<byte> b, Resume r, Auth auth)
    {
        WritePrefix(b, Message.Resume, auth);
        BinaryPrimitives.WriteInt64LittleEndian(b[HandshakeField.ResumeNext..], r.NextSequence);
        BinaryPrimitives.WriteInt64LittleEndian(b[HandshakeField.ResumeSegmentBase..], r.SegmentBase);
        BinaryPrimitives.WriteUInt32LittleEndian(b[HandshakeField.ResumeOffset..], (uint)r.Offset);
        r.QueueId.TryWriteBytes(b.Slice(HandshakeField.ResumeQueueId, 16));
    }

    /// <summary>Decodes and bounds-checks the fields of a RESUME whose prefix was checked, against the sender's segment size.</summary>
    public static Resume ReadResume(ReadOnlySpan<byte> b, long segmentSize)
    {
        uint rawOffset = BinaryPrimitives.ReadUInt32LittleEndian(b[HandshakeField.ResumeOffset..]);
        if (rawOffset < SegmentLayout.FirstRecordOffset || rawOffset > segmentSize || rawOffset % SegmentLayout.RecordAlignment != 0)
            throw ShippingProtocolException.Field("RESUME", HandshakeField.ResumeOffset,
                $"a record offset from {SegmentLayout.FirstRecordOffset} to {segmentSize}, a multiple of {SegmentLayout.RecordAlignment}", $"{rawOffset}");
        if (BinaryPrimitives.ReadUInt32LittleEndian(b[HandshakeField.ResumeReserved..]) != 0)
            throw ShippingProtocolException.Field("RESUME", HandshakeField.ResumeReserved, "reserved 0", $"{BinaryPrimitives.ReadUInt32LittleEndian(b[HandshakeField.ResumeReserved..])}");
        long next = BinaryPrimitives.ReadInt64LittleEndian(b[HandshakeField.ResumeNext..]);
        long segBase = BinaryPrimitives.ReadInt64LittleEndian(b[HandshakeField.ResumeSegmentBase..]);
        if (segBase is < 0 or > MaxSequence || next < segBase || next > MaxSequence)
            throw ShippingProtocolException.Field("RESUME", HandshakeField.ResumeNext, $"a next sequence >= the segment base ({segBase}), both from 0 to {MaxSequence}", $"{next}");
        return new Resume(next, new Guid(b.Slice(HandshakeField.ResumeQueueId, 16)), segBase, (int)rawOffset);
    }

    public static void WriteHeader(Span<byte> b, Kind kind, int length, long a, long c)
    {
        b[..HeaderSize].Clear();
        b[HeaderField.Kind] = (byte)kind;
        BinaryPrimitives.WriteUInt32LittleEndian(b[HeaderField.Length..], (uint)length);
        BinaryPrimitives.WriteInt64LittleEndian(b[HeaderField.A..], a);
        BinaryPrimitives.WriteInt64LittleEndian(b[HeaderField.B..], c);
    }

    /// <summary>Decodes a message header; checks the kind, the reserved bytes and the length bound of its kind.</summary>
    public static Header ReadHeader(ReadOnlySpan<byte> b, long segmentSize)
    {
        var kind = (Kind)b[HeaderField.Kind];
        if (kind is < Kind.Chunk or > Kind.Error)
            throw ShippingProtocolException.Field("message header", HeaderField.Kind, "a kind from 1 to 5", $"{b[HeaderField.Kind]}");
        if (b[HeaderField.Reserved] != 0 || b[HeaderField.Reserved + 1] != 0 || b[HeaderField.Reserved + 2] != 0)
            throw ShippingProtocolException.Field("message header", HeaderField.Reserved, "reserved zeros",
                $"0x{b[HeaderField.Reserved]:X2}{b[HeaderField.Reserved + 1]:X2}{b[HeaderField.Reserved + 2]:X2}");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(b[HeaderField.Length..]);
        long limit = kind switch
        {
            Kind.Chunk => segmentSize - SegmentLayout.FirstRecordOffset,
            Kind.Error => MaxErrorBytes,
            _ => 0,
        };
        if (length > limit || (kind == Kind.Chunk && length == 0))
            throw ShippingProtocolException.Field($"{kind} header", HeaderField.Length, kind == Kind.Chunk ? $"a length from 1 to {limit}" : $"a length of at most {limit}", $"{length}");
        return new Header(kind, (int)length, BinaryPrimitives.ReadInt64LittleEndian(b[HeaderField.A..]), BinaryPrimitives.ReadInt64LittleEndian(b[HeaderField.B..]));
    }
}
