using System.Diagnostics;
using MmapQueues.Format;
using MmapQueues.Storage;

namespace MmapQueues;

internal sealed partial class Flusher
{
    /// <summary>
    /// Walks the frontier forward over published records to <paramref name="target"/> at least (waiting for
    /// producers that reserved below it to publish; they always do) and on over whatever else is already
    /// published; msyncs what it passed; then reports it durable. A claim (or a reservation not yet claimed)
    /// below the target is waited for at most <paramref name="claimWait"/>: then what lay before it is flushed
    /// and reported as usual, and the return value says which claim stopped the flush (null when none did).
    /// </summary>
    private string? FlushUnderFlushLock(long target, TimeSpan claimWait)
    {
        AssertFlushLockHeld();
        var started = Stopwatch.GetTimestamp();
        // Null once Dispose finished: a Flush or sync-mode wait that raced it and was not covered by its flush.
        Segment seg = _frontier ?? throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed.");
        bool skipMsync = _options.TestOnlySkipMsyncEveryNthFlush > 0 && ++_flushCount % _options.TestOnlySkipMsyncEveryNthFlush == 0;
        int off = _frontierOffset;
        long seq = _durableSequence;
        string? stuck;
        if (!seg.TryAcquire()) (seg, off, seq) = FirstHeldAfter(seq); // held across the walk; handed from segment to segment; released in finally
        try
        {
            stuck = WalkAndSyncUnderFlushLock(ref seg, ref off, ref seq, target, skipMsync, claimWait);
        }
        finally
        {
            seg.Release();
        }
        PersistWatermarksUnderFlushLock(skipMsync);
        if (Interlocked.Exchange(ref _directoryDirty, 0) == 1 && !skipMsync)
        {
            try
            {
                Native.Libc.FsyncDirectory(_directory);
            }
            catch (IOException)
            {
                Volatile.Write(ref _directoryDirty, 1); // still not covered: the next flush must try again before reporting anything
                throw;
            }
        }

        _frontier = seg;
        _frontierOffset = off;
        Volatile.Write(ref _durableSequence, seq); // pairs with Volatile.Read in WaitDurable / DurableSequence
        long ended = Stopwatch.GetTimestamp();
        _lastFlushTicks = ended - started;
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started, ended);
        Metrics?.RecordFlush(elapsed);
        double ms = elapsed.TotalMilliseconds;
        if (ms > 100) Log.SlowFlush(_logger, _directory, ms);
        return stuck;
    }

    // Under _flushLock: the sequence the frontier last stopped at (an open claim or a reservation not yet claimed)
    // and since when (Stopwatch timestamp). The frontier only moves forward, so a new sequence means progress.
    private long _stuckSequence = -1;
    private long _stuckSince;

    /// <summary>
    /// The walk of <see cref="FlushUnderFlushLock"/>: advances (seg, off, seq) over published records,
    /// msyncing each segment it finishes and finally the range it advanced in the last one. The caller holds
    /// a reference on <paramref name="seg"/>; the walk hands it over from segment to segment. Returns the
    /// message for a claim it waited at longer than <paramref name="claimWait"/>, else null.
    /// </summary>
    private string? WalkAndSyncUnderFlushLock(ref Segment seg, ref int off, ref long seq, long target, bool skipMsync, TimeSpan claimWait)
    {
        AssertFlushLockHeld();
        var spin = new SpinWait();
        string? stuck = null;
        // long.MaxValue: wait for nobody, take everything published.
        long mustReach = target == long.MaxValue ? 0 : target;
        long stopAt = target == long.MaxValue ? long.MaxValue : target + GroupCommitOvershoot;
        var cursor = new FrameCursor(seg.Bytes, off, seq);
        while (cursor.Sequence < stopAt)
        {
            FrameKind kind = cursor.Read(verifyCrc: false); // acquire-loads the commit word: pairs with PublishWord
            if (kind is FrameKind.EndOfSegment or FrameKind.SegmentFull)
            {
                Segment? next = SegmentStartingAt(cursor.Sequence);
                if (next is null) break; // sealed, but the roll has not listed the next segment: nothing more is appended
                int end = cursor.End;
                long from = seg.WatermarkUnsynced ? 0 : seg.FlushedOffset;
                if (!skipMsync) seg.Region.Flush(from, end - from, seg.Path);
                seg.FlushedOffset = end;
                seg.FullyFlushed = true;
                Recovery.SetWatermark(seg, end, cursor.Sequence - seg.BaseSequence); // exact for a sealed segment; synced after its data by PersistWatermarks
                _watermarkPending.Add(seg);
                next.Acquire();
                seg.Release();
                seg = next;
                cursor = new FrameCursor(seg.Bytes, SegmentLayout.FirstRecordOffset, cursor.Sequence);
                continue;
            }
            if (kind is FrameKind.Empty or FrameKind.Claimed) // the frontier stops at a claim: it is not published yet
            {
                if (cursor.Sequence >= mustReach) break; // past the target: take what is published, wait for nothing more
                long now = Stopwatch.GetTimestamp();
                long giveUpAt = Volatile.Read(ref _giveUpClaimsAt); // pairs with the Volatile.Write in GiveUpClaimsAt
                // The age of this stop is kept across walks (one per waiter, one after the other): ClaimTimeout bounds
                // how long the frontier waits at a claim, not how long each of N waiters waits in turn.
                if (_stuckSequence != cursor.Sequence)
                {
                    _stuckSequence = cursor.Sequence;
                    _stuckSince = now;
                }
                else if (Stopwatch.GetElapsedTime(_stuckSince, now) >= claimWait || (giveUpAt != 0 && now >= giveUpAt))
                {
                    stuck = StuckMessage(seg, cursor.Offset, cursor.Sequence, kind, Stopwatch.GetElapsedTime(_stuckSince));
                    break;
                }
                spin.SpinOnce();          // a producer reserved below target and is still copying
                continue;
            }
            if (kind == FrameKind.Bad) // only bytes written past the queue's back can do this: do not report them durable
                throw QueueCorruptedException.At(seg.Path, cursor.Offset, cursor.Problem!.Value.Expected, cursor.Problem.Value.Found);
            cursor.Advance();
        }
        off = cursor.Offset;
        seq = cursor.Sequence;

        if (off > seg.FlushedOffset)
        {
            // One msync covers the new records and, when it moved, the watermark in the header page.
            long from = seg.WatermarkUnsynced ? 0 : seg.FlushedOffset;
            if (!skipMsync) seg.Region.Flush(from, off - from, seg.Path);
            seg.WatermarkUnsynced = false;
            seg.FlushedOffset = off;
            if (off - seg.Watermark >= WatermarkStepBytes)
            {
                // Lags one flush: it reaches the disk with the next msync from 0. Moved only every
                // WatermarkStepBytes so that a sync-mode flush usually writes the record's page alone.
                Recovery.SetWatermark(seg, off, seq - seg.BaseSequence); // the frontier knows the sequence at its offset
                seg.Watermark = off;
                seg.WatermarkUnsynced = true;
            }
        }
        return stuck;
    }

    /// <summary>Why a flush gave up at the frame at <paramref name="offset"/>: the claim's sequence, file, offset and age.</summary>
    private string StuckMessage(Segment seg, int offset, long sequence, FrameKind kind, TimeSpan waited)
    {
        string what = kind == FrameKind.Claimed ? "claim" : "reservation (its claim not stored yet)";
        string age = Claims.AgeOf(sequence) is { } open ? $"open for {open.TotalMilliseconds:F0} ms" : $"waited for {waited.TotalMilliseconds:F0} ms";
        return $"Flush of {_directory} gave up after MmapQueueOptions.ClaimTimeout ({_options.ClaimTimeout}): the {what} of sequence {sequence} " +
               $"in {seg.Path} at offset {offset} is still not published ({age}); an Enqueue callback is running long or never returned. " +
               $"Records before it are durable (DurableSequence {sequence}); later ones wait for it.";
    }

    /// <summary>
    /// Group commit: a flush goes on past its target over records already published (other producers'
    /// records, which then need no msync of their own), up to this many, so a flood cannot keep it walking.
    /// </summary>
    private const long GroupCommitOvershoot = 1 << 16;

    /// <summary>How far the frontier moves before the header watermark follows (see docs/DECISIONS.md).</summary>
    private const long WatermarkStepBytes = 1 << 20;

    /// <summary>
    /// msyncs the header page of sealed segments whose watermark moved since; with <paramref name="includeFrontier"/>
    /// (on Dispose) also brings the frontier's watermark up to date and, with <paramref name="cleanClose"/>, sets
    /// its CLEAN_CLOSE flag, both in the one msync of its header (after the data's, done by the walk).
    /// </summary>
    private void PersistWatermarksUnderFlushLock(bool skipMsync = false, bool includeFrontier = false, bool cleanClose = false)
    {
        AssertFlushLockHeld();
        foreach (Segment s in _watermarkPending)
        {
            if (!s.TryAcquire()) continue; // retention deleted it: its header no longer matters
            try
            {
                if (!skipMsync) s.Region.Flush(0, SegmentLayout.HeaderSize, s.Path);
            }
            finally
            {
                s.Release();
            }
        }
        _watermarkPending.Clear();
        if (includeFrontier && _frontier is { } f && f.TryAcquire()) // a freed frontier has no watermark to keep
        {
            try
            {
                Recovery.SetWatermark(f, _frontierOffset, _durableSequence - f.BaseSequence);
                if (cleanClose) SegmentHeader.WriteCleanClose(f.Bytes, clean: true); // after the watermark: it carries its check
                f.Watermark = _frontierOffset;
                f.Region.Flush(0, SegmentLayout.HeaderSize, f.Path);
                f.WatermarkUnsynced = false;
            }
            finally
            {
                f.Release();
            }
        }
    }

    /// <summary>
    /// Retention freed the frontier's segment before this flush reached its end (<see cref="MmapQueueOptions.RecycleSegments"/>
    /// frees consumed segments without waiting for the flusher): every named consumer is past its records and the
    /// retention floor, durable before any free, puts them out of the queue, so they need no msync. The walk goes on
    /// from the first listed segment it can hold at or after <paramref name="sequence"/>; freed segments are a prefix
    /// of the list, and a segment held here cannot be freed (the free checks references under the segment's lock).
    /// </summary>
    private (Segment Segment, int Offset, long Sequence) FirstHeldAfter(long sequence)
    {
        AssertFlushLockHeld();
        foreach (Segment s in _segments.Snapshot)
            if (s.BaseSequence >= sequence && s.TryAcquire()) return (s, SegmentLayout.FirstRecordOffset, s.BaseSequence);
        // The active segment is never freed; only a closing queue (its segments released) gets here.
        throw new ObjectDisposedException(nameof(MmapQueue), $"Queue {_directory} is disposed.");
    }

    /// <summary>The segment whose base is <paramref name="sequence"/>, once the roll has listed it.</summary>
    private Segment? SegmentStartingAt(long sequence) => _segments.StartingAt(sequence);
}
