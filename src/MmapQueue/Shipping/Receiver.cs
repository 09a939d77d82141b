using System.Buffers.Binary;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues.Shipping;

/// <summary>
/// The receiving side of a session, after the handshake: reads CHUNKs into the replica's active segment
/// at the sender's offsets, checks each record, publishes it, flushes and acknowledges.
/// </summary>
/// <remarks>
/// Bytes of a record go into the mapping as they arrive, except its commit word, which is held here until
/// the whole frame is in and its CRC checked; then the record is reserved and the word published last.
/// So readers (and recovery after a crash) never see an unchecked record: before the word is published
/// the frame reads as "nothing here yet", and a crash leaves a torn tail that recovery zeroes. On any
/// failure the unpublished bytes are zeroed at once.
/// </remarks>
internal sealed class Receiver
{
    private readonly MmapQueue _queue;
    private readonly Connection _conn;
    private readonly Stream _stream;
    private readonly TimeSpan _idle;
    private readonly IProgress<ShippingProgress>? _progress;
    private readonly CancellationToken _cancel;
    private readonly byte[] _buffer = new byte[1 << 20];
    private readonly byte[] _header = new byte[WireProtocol.HeaderSize];
    private readonly long _segmentSize;

    private Segment _active;      // the replica's active segment (the queue's writer holds its reference)
    private int _received;        // next byte offset expected in _active
    private int _frameStart;      // offset of the frame being assembled (its commit word is unpublished)
    private int _frameEnd;        // its end, once its commit word is in
    private readonly byte[] _word = new byte[4];
    private int _wordBytes;       // bytes of its commit word received so far (0..4)
    private uint _commitWord;
    private int _dirtyEnd;        // end of bytes written to the mapping beyond _frameStart (zeroed on failure)
    private long _next;           // the sequence of the frame being assembled
    private bool _segmentEndedInChunk; // an end marker ended the current chunk's segment
    private long _bytes, _sinceAck;
    private long _freeAtLastMarker = -1; // bytes left after the last end marker received (-1: none this session)
    private int _largestFrameHere;       // the largest frame received in the active segment this session

    public Receiver(MmapQueue queue, Connection conn, TimeSpan idle, IProgress<ShippingProgress>? progress, CancellationToken cancel)
    {
        _queue = queue;
        _conn = conn;
        _stream = conn.Stream;
        _idle = idle;
        _progress = progress;
        _cancel = cancel;
        _segmentSize = queue.SegmentSize;
        _next = queue.NextSequence;
        _active = queue.ActiveSegment;
        EnterActive(_active.ReservedTail.End);
        RestoreSegmentEndState();
    }

    public async Task<long> RunAsync()
    {
        await SendResumeAsync().ConfigureAwait(false);
        try
        {
            while (true)
            {
                await ReadExactlyOrThrowAsync(_header, "a message header").ConfigureAwait(false);
                WireProtocol.Header h = WireProtocol.ReadHeader(_header, _segmentSize);
                switch (h.Kind)
                {
                    case WireProtocol.Kind.Chunk:
                        await ReceiveChunkAsync(h).ConfigureAwait(false);
                        if (_sinceAck >= WireProtocol.AckEveryBytes) await AckAsync().ConfigureAwait(false);
                        break;
                    case WireProtocol.Kind.Sync:
                    case WireProtocol.Kind.End:
                        if (_frameStart != _received)
                            throw Refuse($"{h.Kind} inside the record at offset {_frameStart} of segment {_active.BaseSequence}", $"{_received - _frameStart} of its bytes received");
                        if (h.A != _next)
                            throw ShippingProtocolException.Field($"{h.Kind}", WireProtocol.HeaderField.A, $"the next sequence {_next} (records received)", $"{h.A}");
                        await AckAsync().ConfigureAwait(false);
                        if (h.Kind == WireProtocol.Kind.End) return _queue.DurableSequence;
                        break;
                    case WireProtocol.Kind.Error:
                        throw await _conn.ReadPeerErrorAsync(h, _idle, sync: false, _cancel, $"Replica {_queue.Path}").ConfigureAwait(false);
                    default:
                        throw ShippingProtocolException.Field("message from the sender", WireProtocol.HeaderField.Kind, "CHUNK, SYNC, END or ERROR", $"{h.Kind}");
                }
            }
        }
        catch
        {
            DiscardUnpublished(); // the session's caller tells the peer the code and logs the details
            throw;
        }
    }

    private async Task SendResumeAsync()
    {
        var b = new byte[WireProtocol.ResumeSize];
        WireProtocol.WriteResume(b, new WireProtocol.Resume(_queue.DurableSequence, _queue.QueueId, _active.BaseSequence, _received), _conn.Auth);
        await _conn.WriteAsync(b, _idle, sync: false, _cancel, "RESUME").ConfigureAwait(false);
    }

    private async Task AckAsync()
    {
        _queue.Flush();
        long durable = _queue.DurableSequence;
        WireProtocol.WriteHeader(_header, WireProtocol.Kind.Ack, 0, durable, 0);
        await _conn.WriteAsync(_header, _idle, sync: false, _cancel, "an ACK").ConfigureAwait(false); // a sender that reads no ACK cannot hold the replica
        _sinceAck = 0;
        _progress?.Report(new ShippingProgress(_next, durable, _bytes));
    }

    private async Task ReceiveChunkAsync(WireProtocol.Header h)
    {
        BeginChunk(h.A, h.B, h.Length);
        int left = h.Length;
        while (left > 0)
        {
            int n = await ReadSomeAsync(_buffer.AsMemory(0, Math.Min(left, _buffer.Length)), h).ConfigureAwait(false);
            if (n == 0)
                throw new ShippingProtocolException($"Truncated CHUNK: the stream ended with {left} of its {h.Length} bytes missing " +
                                                    $"(segment {h.A}, offset {h.B + h.Length - left}); the replica keeps records before sequence {_next}.");
            Feed(_buffer.AsSpan(0, n));
            left -= n;
            _bytes += n;
            _sinceAck += n;
        }
    }

    private void BeginChunk(long segmentBase, long offset, int length)
    {
        _segmentEndedInChunk = false;
        if (segmentBase != _active.BaseSequence)
        {
            // The first chunk of the next segment: only after the active one is filled exactly (no end
            // marker; the source rolled when its next record did not fit, and so do we, at the same point).
            bool full = _frameStart == _received && _received + SegmentLayout.RecordHeaderSize > _active.Size;
            if (!full || segmentBase != _next || offset != SegmentLayout.FirstRecordOffset)
                throw ShippingProtocolException.Field("CHUNK header", WireProtocol.HeaderField.A,
                    full ? $"segment {_next} at offset {SegmentLayout.FirstRecordOffset}" : $"segment {_active.BaseSequence} (the active one)",
                    $"segment {segmentBase} at offset {offset}");
            RollFilled();
        }
        if (offset != _received)
            throw ShippingProtocolException.Field("CHUNK header", WireProtocol.HeaderField.B, $"offset {_received} in segment {segmentBase} (contiguous with what was received)", $"{offset}");
        if (length > _active.Size - offset)
            throw ShippingProtocolException.Field("CHUNK header", WireProtocol.HeaderField.Length, $"a length of at most {_active.Size - offset} (to the end of segment {segmentBase})", $"{length}");
    }

    private void EnterActive(int offset)
    {
        _received = _frameStart = _dirtyEnd = offset;
        _wordBytes = 0;
    }

    /// <summary>Takes the next bytes of the current chunk (they continue at <see cref="_received"/>).</summary>
    private void Feed(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (_segmentEndedInChunk)
                throw Refuse($"no bytes after the end-of-segment marker in a chunk", $"{bytes.Length - i} more bytes");
            if (_wordBytes < 4)
            {
                _word[_wordBytes++] = bytes[i++];
                _received++;
                if (_wordBytes == 4) CheckCommitWord();
                continue;
            }
            int n = Math.Min(bytes.Length - i, _frameEnd - _received);
            bytes.Slice(i, n).CopyTo(_active.Bytes.Slice(_received, n));
            i += n;
            _received += n;
            _dirtyEnd = Math.Max(_dirtyEnd, _received);
            if (_received == _frameEnd) CompleteFrame();
        }
    }

    /// <summary>Checks the held commit word's flags and that its length fits the segment, before any length is used.</summary>
    private void CheckCommitWord()
    {
        uint word = BinaryPrimitives.ReadUInt32LittleEndian(_word);
        FrameKind kind = Frames.ClassifyWord(word, out int length);
        if (kind is FrameKind.Empty or FrameKind.Bad or FrameKind.Claimed) // a sender ships only published frames: a claim is refused too
            throw Refuse("a published commit word (flags PUBLISHED[|ABORTED], or END_OF_SEGMENT)",
                kind == FrameKind.Claimed ? $"a claim in progress (commit word 0x{word:X8}, length {length})" : $"0x{word:X8}");
        int frame = SegmentLayout.FrameLength(length); // the end marker's length is 0: a bare frame header
        if ((long)_frameStart + frame > _active.Size)
            throw Refuse($"a record that ends inside the segment ({_active.Size} bytes)", $"a length of {length} bytes (commit word 0x{word:X8})");
        _commitWord = word;
        _frameEnd = _frameStart + frame;
    }

    private void CompleteFrame()
    {
        FrameKind kind = Frames.Classify(_active.Bytes, _frameStart, _commitWord, _next, verifyCrc: true, out _, out FrameProblem? problem);
        switch (kind)
        {
            case FrameKind.Payload:
            case FrameKind.Aborted:
                _queue.PublishReplicated(_active, _frameStart, _frameEnd - _frameStart, _commitWord, _next);
                _next = checked(_next + 1);
                _largestFrameHere = Math.Max(_largestFrameHere, _frameEnd - _frameStart);
                _frameStart = _dirtyEnd = _frameEnd;
                _wordBytes = 0;
                return;
            case FrameKind.EndOfSegment:
                // The source sealed here. Roll the replica the same way: it lists the next segment, then
                // writes the same end marker (its CRC carries the next sequence, so it comes out identical).
                CheckSegmentEnd();
                _queue.RollReplicated(_active);
                _active = _queue.ActiveSegment;
                EnterActive(SegmentLayout.FirstRecordOffset);
                _segmentEndedInChunk = true;
                return;
            default:
                throw Refuse(problem?.Expected ?? "a valid record", problem?.Found ?? $"{kind}");
        }
    }

    /// <summary>
    /// An end marker is accepted only where the source's next record could not have fit: the source rolls
    /// only then. Checked one segment late, since the record that did not fit arrives in the next segment
    /// (a later producer's smaller record may come first there, so any frame of that segment will do, or a
    /// segment at least half full). Stops a peer from rolling a preallocated segment per few bytes sent.
    /// </summary>
    private void CheckSegmentEnd()
    {
        int at = _frameStart;
        if (at == SegmentLayout.FirstRecordOffset) // a source seals only a segment with a record: the next one would have the same name
            throw Refuse("a segment end after at least one record", "an end marker at the segment's first record offset");
        if (_freeAtLastMarker >= 0 && _largestFrameHere <= _freeAtLastMarker && at < _active.Size / 2)
            throw Refuse($"a segment end only where the next record could not have fit (a frame over {_freeAtLastMarker} bytes after the last end)",
                         $"an end marker at offset {at}, the largest frame since {_largestFrameHere} bytes");
        _freeAtLastMarker = _active.Size - at;
        _largestFrameHere = 0;
    }

    /// <summary>
    /// Carries <see cref="CheckSegmentEnd"/>'s state over from earlier sessions: the room the previous segment's
    /// end marker left, and the largest frame the active segment holds. Without it the first end marker of every
    /// session went unchecked, and a sender that ended each session after one marker rolled one preallocated
    /// segment per session.
    /// </summary>
    private void RestoreSegmentEndState()
    {
        if (_active.BaseSequence <= _queue.FirstSequence || _queue.FindSegment(_active.BaseSequence - 1) is not { } previous
            || previous == _active || !previous.TryAcquire())
            return; // the first segment: nothing before it to check against
        try
        {
            var c = new FrameCursor(previous.Bytes, SegmentLayout.FirstRecordOffset, previous.BaseSequence);
            while (c.Read(verifyCrc: false) is FrameKind.Payload or FrameKind.Aborted) c.Advance();
            if (c.Kind != FrameKind.EndOfSegment) return; // filled exactly, or unreadable: as after RollFilled
            _freeAtLastMarker = previous.Size - c.Offset;
        }
        finally
        {
            previous.Release();
        }
        var a = new FrameCursor(_active.Bytes, SegmentLayout.FirstRecordOffset, _active.BaseSequence);
        while (a.Offset < _received && a.Read(verifyCrc: false) is FrameKind.Payload or FrameKind.Aborted)
        {
            int start = a.Offset;
            a.Advance();
            _largestFrameHere = Math.Max(_largestFrameHere, a.Offset - start);
        }
    }

    /// <summary>Rolls after a segment filled exactly (no marker; nothing could fit): no requirement on the next one.</summary>
    private void RollFilled()
    {
        _queue.RollReplicated(_active);
        _active = _queue.ActiveSegment;
        EnterActive(SegmentLayout.FirstRecordOffset);
        _freeAtLastMarker = -1;
        _largestFrameHere = 0;
    }

    private ShippingProtocolException Refuse(string expected, string found) =>
        new($"Refused record {_next} at offset {_frameStart} of segment {_active.BaseSequence} ({_active.Path}): expected {expected}, " +
            $"found {found}. The replica keeps the {_next - _queue.FirstSequence} records before it.", ShippingErrorCode.Record);

    /// <summary>Reads some bytes of a CHUNK body; the sender may be silent at most the idle timeout.</summary>
    private async ValueTask<int> ReadSomeAsync(Memory<byte> into, WireProtocol.Header h)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(_cancel);
        idle.CancelAfter(_idle);
        try
        {
            return await _stream.ReadAsync(into, idle.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!_cancel.IsCancellationRequested)
        {
            throw new TimeoutException($"Replica {_queue.Path}: the sender sent nothing for {_idle.TotalSeconds:0.#} s inside the CHUNK at offset {h.B} of segment {h.A}.", e);
        }
    }

    /// <summary>Zeroes the bytes of a frame that was never published, so nothing unchecked stays in the file.</summary>
    private void DiscardUnpublished()
    {
        if (_dirtyEnd > _frameStart) _active.Bytes[_frameStart.._dirtyEnd].Clear();
        _dirtyEnd = _frameStart;
    }

    private ValueTask ReadExactlyOrThrowAsync(byte[] into, string what) => _conn.ReadExactlyAsync(into, _idle, sync: false, _cancel, what);
}
