using System.Buffers.Binary;

namespace MmapQueues.Nats;

/// <summary>
/// The body of a batched message (<see cref="NatsForwarderOptions.BatchMaxBytes"/> &gt; 0): many queue records
/// packed into one JetStream message. This file owns the format; <see cref="NatsBatchReader"/> reads it.
/// </summary>
/// <remarks>
/// <code>
///  offset  size  field (all integers little-endian)
///  ------  ----  -----------------------------------------------------------------
///       0     4  magic "MQB1" (0x4D 0x51 0x42 0x31)
///       4     4  u32 record count N (at least 1)
///       8     8  i64 sequence of the first record in the queue
///      16        N records, back to back, no padding:
///                +0  u32 payload length L
///                +4  u32 sequence gap: this record's sequence minus the previous record's
///                    sequence minus 1 (0 for the first record and for consecutive records;
///                    non-zero where the queue skipped sequences: aborted claims, dropped records)
///                +8  L payload bytes
///  end: exactly after the N-th record (trailing bytes are an error)
/// </code>
/// A batch adds 16 bytes per message and 8 bytes per record. Headers of the message (see
/// <see cref="NatsForwardHeaders"/>) repeat the queue id and the sequences the batch covers.
/// </remarks>
public static class NatsBatch
{
    /// <summary>"MQB1" read as a little-endian u32.</summary>
    public const uint Magic = 0x3142514D;

    /// <summary>Bytes before the first record.</summary>
    public const int HeaderSize = 16;

    /// <summary>Bytes before each record's payload.</summary>
    public const int RecordHeaderSize = 8;

    internal static void WriteHeader(Span<byte> destination, int count, long firstSequence)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)count);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], firstSequence);
    }

    internal static void WriteRecordHeader(Span<byte> destination, int length, uint gap)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], gap);
    }
}

/// <summary>
/// Reads the records of a batched message (format in <see cref="NatsBatch"/>), checking every length against
/// the bytes present: a message from the network is hostile until read. Not a copy: payloads are views into
/// the message body.
/// </summary>
public ref struct NatsBatchReader
{
    private readonly ReadOnlySpan<byte> _body;
    private readonly int _count;
    private int _read;
    private int _offset;
    private long _sequence;

    /// <summary>Checks the batch header.</summary>
    /// <exception cref="InvalidDataException">The body is not a batch: too short, wrong magic or a zero count (the message names offset, expected and found).</exception>
    public NatsBatchReader(ReadOnlySpan<byte> body)
    {
        if (body.Length < NatsBatch.HeaderSize)
            throw Bad(0, $"a {NatsBatch.HeaderSize}-byte batch header", $"{body.Length} bytes");
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(body);
        if (magic != NatsBatch.Magic) throw Bad(0, $"magic 0x{NatsBatch.Magic:X8} (\"MQB1\")", $"0x{magic:X8}");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
        long first = BinaryPrimitives.ReadInt64LittleEndian(body[8..]);
        // Each record takes at least its 8-byte header: a count beyond that cannot be honest.
        if (count == 0 || count > (uint)((body.Length - NatsBatch.HeaderSize) / NatsBatch.RecordHeaderSize))
            throw Bad(4, $"a record count from 1 to {(body.Length - NatsBatch.HeaderSize) / NatsBatch.RecordHeaderSize} (what {body.Length} bytes can hold)", count.ToString());
        if (first < 0) throw Bad(8, "a non-negative first sequence", first.ToString());
        _body = body;
        _count = (int)count;
        _offset = NatsBatch.HeaderSize;
        _sequence = first - 1;
        FirstSequence = first;
    }

    /// <summary>The sequence of the batch's first record.</summary>
    public long FirstSequence { get; }

    /// <summary>How many records the batch holds.</summary>
    public readonly int Count => _count;

    /// <summary>Returns the next record, or false after the last one (having checked that no bytes trail it).</summary>
    /// <exception cref="InvalidDataException">A length runs past the body, or bytes trail the last record.</exception>
    public bool TryRead(out long sequence, out ReadOnlySpan<byte> payload)
    {
        if (_read == _count)
        {
            if (_offset != _body.Length) throw Bad(_offset, $"the end of the batch after {_count} records", $"{_body.Length - _offset} more bytes");
            sequence = -1;
            payload = default;
            return false;
        }
        if (_body.Length - _offset < NatsBatch.RecordHeaderSize)
            throw Bad(_offset, $"an {NatsBatch.RecordHeaderSize}-byte record header (record {_read} of {_count})", $"{_body.Length - _offset} bytes");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_body[_offset..]);
        uint gap = BinaryPrimitives.ReadUInt32LittleEndian(_body[(_offset + 4)..]);
        if (_read == 0 && gap != 0) throw Bad(_offset + 4, "gap 0 for the first record", gap.ToString());
        int start = _offset + NatsBatch.RecordHeaderSize;
        if (length > (uint)(_body.Length - start))
            throw Bad(_offset, $"a payload length of at most {_body.Length - start} (record {_read} of {_count})", length.ToString());
        _sequence += 1 + gap;
        sequence = _sequence;
        payload = _body.Slice(start, (int)length);
        _offset = start + (int)length;
        _read++;
        return true;
    }

    private static InvalidDataException Bad(int offset, string expected, string found) =>
        new($"Not a valid MmapQueue batch at offset {offset}: expected {expected}, found {found}.");
}
