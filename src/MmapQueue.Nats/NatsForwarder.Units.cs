namespace MmapQueues.Nats;

public sealed partial class NatsForwarder
{
    private byte[] _buffer = new byte[4096]; // the body of the unit being published
    private int _length;
    private byte[] _carry = new byte[256];   // a record read but not fitting the previous batch
    private int _carryLength = -1;           // -1: no carried record
    private long _carrySequence;

    /// <summary>One message to publish: the sequences it covers and its body in <c>_buffer[0.._length)</c>.</summary>
    private readonly record struct Unit(long From, long Last, int Records, long PayloadBytes);

    /// <summary>
    /// Cuts the next message from the read-ahead reader: one record, or (batched) as many as fit
    /// <see cref="NatsForwarderOptions.BatchMaxBytes"/>. After a retry the ranges in flight before it are cut again
    /// exactly (same message ids), so the stream's de-duplication recognises them.
    /// </summary>
    private bool TryCutUnit(int maxPayload, out Unit unit)
    {
        while (_replay.Count > 0 && _replay[0].Last < _nextFrom) _replay.RemoveAt(0);
        long stopAt = _replay.Count > 0 ? _replay[0].Last : long.MaxValue;
        bool batched = _options.BatchMaxBytes > 0;
        int hardLimit = maxPayload - HeaderAllowance;
        int limit = batched ? Math.Min(_options.BatchMaxBytes, hardLimit) : hardLimit;
        _length = batched ? NatsBatch.HeaderSize : 0;
        int count = 0;
        long first = -1, previous = -1, payloadBytes = 0;
        while (true)
        {
            long sequence;
            ReadOnlySpan<byte> payload;
            if (_carryLength >= 0)
            {
                sequence = _carrySequence;
                payload = _carry.AsSpan(0, _carryLength);
            }
            else if (_reader!.TryRead(out payload)) sequence = _reader.NextSequence - 1;
            else break;

            if (!batched)
            {
                if (payload.Length > hardLimit) throw TooLarge(sequence, payload.Length, hardLimit);
                Append(payload);
                first = previous = sequence;
                count = 1;
                payloadBytes = payload.Length;
                break;
            }
            int size = NatsBatch.RecordHeaderSize + payload.Length;
            bool fits = _length + size <= limit && sequence <= stopAt && (count == 0 || sequence - previous - 1 <= uint.MaxValue);
            if (count > 0 && !fits)
            {
                Carry(sequence, payload);
                break;
            }
            if (NatsBatch.HeaderSize + size > hardLimit) throw TooLarge(sequence, payload.Length, hardLimit - NatsBatch.HeaderSize - NatsBatch.RecordHeaderSize);
            EnsureCapacity(_length + size);
            NatsBatch.WriteRecordHeader(_buffer.AsSpan(_length), payload.Length, count == 0 ? 0 : (uint)(sequence - previous - 1));
            _length += NatsBatch.RecordHeaderSize;
            Append(payload);
            _carryLength = -1;
            if (count == 0) first = sequence;
            previous = sequence;
            count++;
            payloadBytes += payload.Length;
            if (sequence >= stopAt || _length >= limit) break;
        }
        if (count == 0)
        {
            unit = default;
            return false;
        }
        if (batched) NatsBatch.WriteHeader(_buffer, count, first);
        unit = new Unit(_nextFrom, previous, count, payloadBytes);
        _nextFrom = previous + 1;
        if (_replay.Count > 0 && previous >= _replay[0].Last) _replay.RemoveAt(0);
        return true;
    }

    /// <summary>Room left in a message for the headers (queue id, sequences, format, message id).</summary>
    private const int HeaderAllowance = 512;

    private void Append(ReadOnlySpan<byte> payload)
    {
        EnsureCapacity(_length + payload.Length);
        payload.CopyTo(_buffer.AsSpan(_length));
        _length += payload.Length;
    }

    private void Carry(long sequence, ReadOnlySpan<byte> payload)
    {
        if (_carryLength >= 0) return; // already carried: the same bytes
        if (_carry.Length < payload.Length) _carry = new byte[Math.Max(payload.Length, _carry.Length * 2)];
        payload.CopyTo(_carry);
        _carryLength = payload.Length;
        _carrySequence = sequence;
    }

    private void EnsureCapacity(int needed)
    {
        if (_buffer.Length >= needed) return;
        Array.Resize(ref _buffer, Math.Max(needed, _buffer.Length * 2));
    }

    private NatsForwardException TooLarge(long sequence, int length, int limit) =>
        Permanent(sequence, $"its payload is {length} bytes and a message to this server holds at most {limit} payload bytes " +
                            "(the server's max_payload less room for headers); raise max_payload on the server or split the record");
}
