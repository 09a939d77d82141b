using System.Diagnostics;
using MmapQueues.Format;
using Microsoft.Extensions.Logging;

namespace MmapQueues.Storage;

/// <summary>What opening found: the segments in order and where appending resumes.</summary>
internal sealed record RecoveredQueue(List<Segment> Segments, long NextSequence, int TailEnd, int Scanned);

/// <summary>
/// Opening a queue: validate every header (O(segments)), scan only segments not proven durable (normally
/// just the tail), truncate a torn tail, report corruption before it.
/// </summary>
/// <remarks>
/// <para>The rule that separates a torn tail from corruption is the durable watermark (<c>durableEnd</c> in
/// the header): Flush writes it after its msync returned, so every byte before it reached the disk. A bad
/// or missing record before the watermark is corruption and is thrown; at or after it, it is a tail that
/// power loss tore (pages reach the disk in any order), which is truncated and zeroed. Any segment before
/// one that holds durable data was flushed whole (Flush walks segments in order), so it is held to the
/// strict rule end to end even if its own watermark write was lost.</para>
/// <para>A sealed segment whose watermark sits just past a valid end marker (or at its end) is trusted
/// without a scan. The tail of a v2 segment is walked from its watermark (offset and record count), never
/// over its durable prefix; with CLEAN_CLOSE set it is not walked at all (docs/DECISIONS.md, "O(1) open").</para>
/// </remarks>
internal static partial class Recovery
{
    public static RecoveredQueue Open(string directory, QueueDirectory.Meta meta, ILogger logger)
    {
        var files = QueueDirectory.ListSegments(directory);
        var segments = new List<Segment>(files.Count);
        var headers = new SegmentHeader[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            headers[i] = SegmentFiles.Validate(files[i].Path, files[i].Base, meta.SegmentSize, meta.QueueId);
            segments.Add(new Segment(files[i].Path, files[i].Base, meta.SegmentSize));
        }
        if (segments.Count == 0) return new RecoveredQueue(segments, 0, SegmentLayout.FirstRecordOffset, 0);

        int lastWithDurableData = Array.FindLastIndex(headers, h => h.DurableEnd > SegmentLayout.FirstRecordOffset);
        int scanned = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            Segment seg = segments[i];
            SegmentHeader header = headers[i];
            bool isLast = i == segments.Count - 1;
            long nextBase = isLast ? long.MaxValue : segments[i + 1].BaseSequence;
            if (!isLast && IsTrustedSealed(seg, header, nextBase))
            {
                seg.FullyFlushed = true; // durable end to end: retention may delete it
                seg.RecoveredComplete = true; // not scanned: the reader reports a zero word inside it as corruption
                continue;
            }

            seg.Acquire();
            if (isLast && TrustCleanClose(seg, header) is { } clean)
                return ResumeTail(segments, seg, clean.Records, clean.End, clean.Sealed, scanned);

            scanned++;
            long strictUntil = i < lastWithDurableData ? seg.Size : header.DurableEnd;
            var (from, fromSequence, nothingPast) = WalkStart(seg, header, isLast);
            var (records, end, sealedHere) = nothingPast
                ? (fromSequence - seg.BaseSequence, from, false) // zeros from the watermark to the end: nothing to walk or repair
                : ScanAndRepair(seg, from, fromSequence, strictUntil, header.DurableEnd, logger);
            long next = seg.BaseSequence + records;
            if (!isLast)
            {
                if (next > nextBase)
                    throw QueueCorruptedException.At(seg.Path, end, $"at most {nextBase - seg.BaseSequence} records (the next segment starts at {nextBase})", $"{records}");
                if (next == nextBase && !sealedHere)
                {
                    // Complete, but the writer stopped between activating the next segment and writing this end marker.
                    WriteEndMarker(seg, end, next);
                }
                else if (next < nextBase && sealedHere)
                {
                    // Complete (its end marker names sequence `next`), yet the next file starts later: a segment file is missing.
                    throw QueueCorruptedException.At(seg.Path, end, $"the next segment {Path.GetFileName(SegmentNames.For(directory, next))} " +
                                                                    $"(this one ends before sequence {next})", $"the next segment file starts at {nextBase}");
                }
                else if (next < nextBase)
                {
                    // A torn tail inside an earlier segment: nothing after it was ever durable.
                    for (int j = segments.Count - 1; j > i; j--)
                    {
                        Log.DroppedSegmentAfterTear(logger, segments[j].Path);
                        QueueFiles.Delete(segments[j].Path);
                        segments.RemoveAt(j);
                    }
                    // Durable before anything is appended here: a later power cut must not bring those files
                    // back beside new records that reuse their sequences (no flush fsyncs the directory for this).
                    QueueFiles.FsyncDirectory(directory);
                    isLast = true;
                }
            }
            // Whatever opening kept or repaired past the walk's start is durable from here on (before it, it already was).
            long syncFrom = from / SegmentLayout.PageSize * SegmentLayout.PageSize;
            seg.Region.Flush(syncFrom, seg.Size - syncFrom, seg.Path);
            SetWatermark(seg, Math.Min(seg.Size, end + (sealedHere ? SegmentLayout.RecordHeaderSize : 0)), records); // an exactly full segment has no marker
            if (isLast) return ResumeTail(segments, seg, records, end, sealedHere, scanned);
            seg.Region.Flush(0, SegmentLayout.HeaderSize, seg.Path);
            seg.FullyFlushed = true;
            seg.RecoveredComplete = true;
            seg.Release();
        }
        throw new UnreachableException("the last segment always returns");
    }

    /// <summary>
    /// Scans every record with its CRC from <paramref name="from"/> (sequence <paramref name="fromSequence"/>);
    /// truncates and zeroes a torn tail; throws on corruption. Past the strict region, an unfinished claim (or a
    /// reservation whose claim was never stored, followed by the next record) becomes an aborted record and the
    /// walk goes on (<see cref="ClaimRepair"/>).
    /// </summary>
    private static (long Records, int End, bool Sealed) ScanAndRepair(Segment seg, int from, long fromSequence, long strictUntil, long durableEnd, ILogger logger)
    {
        Span<byte> bytes = seg.Bytes;
        int maxFrame = SegmentLayout.FrameLength(SegmentLayout.MaxPayloadFor(seg.Size));
        var cursor = new FrameCursor(bytes, from, fromSequence);
        while (true)
        {
            FrameKind kind = cursor.Read(verifyCrc: true);
            int off = cursor.Offset;
            long seq = cursor.Sequence;
            FrameProblem? problem = null;
            switch (kind)
            {
                case FrameKind.Payload:
                case FrameKind.Aborted:
                    cursor.Advance();
                    continue;
                case FrameKind.EndOfSegment:
                case FrameKind.SegmentFull:
                    return (seq - seg.BaseSequence, off, true);
                case FrameKind.Claimed:
                    uint word = Frames.LoadCommitWord(bytes, off);
                    int length = cursor.Payload.Length;
                    if (off >= strictUntil && Frames.ClaimHolds(bytes, off, word, seq))
                    {
                        ClaimRepair.AbortClaim(bytes, off, seq, length);
                        Log.ClaimAborted(logger, seg.Path, off, seq, SegmentLayout.FrameLength(length), "its claim CRC holds");
                        continue; // read again: an aborted record now
                    }
                    problem = new(off < strictUntil ? $"a published record (the segment was durable up to offset {strictUntil})" : $"a claim for sequence {seq} whose claim CRC holds",
                        $"claim in progress at offset {off} (length {length}, commit word 0x{word:X8})");
                    break;
                case FrameKind.Empty when off >= strictUntil:
                    int next = ClaimRepair.FindNextFrame(bytes, off, seq + 1, maxFrame);
                    if (next < 0) break;
                    ClaimRepair.AbortGap(bytes, off, next, seq);
                    Log.ClaimAborted(logger, seg.Path, off, seq, next - off, $"a reservation without its claim, before a frame for sequence {seq + 1} at offset {next}");
                    continue;
            }
            // Empty, Bad or a claim that is not one to repair: the records end here. Anything non-zero from here on is a torn remnant.
            problem ??= cursor.Problem;
            int rest = bytes[off..].LastIndexOfAnyExcept((byte)0);
            int tornEnd = rest < 0 ? off : off + rest + 1;
            if (problem is not null || tornEnd > off)
            {
                if (off < strictUntil)
                {
                    FrameProblem p = problem ?? new($"a record (durable up to offset {strictUntil})",
                        $"a zero commit word followed by {tornEnd - off} non-zero bytes");
                    Log.CorruptionFound(logger, seg.Path, off, $"expected {p.Expected}, found {p.Found}");
                    throw QueueCorruptedException.At(seg.Path, off, p.Expected, p.Found);
                }
                bytes[off..tornEnd].Clear();
                Log.TornTailTruncated(logger, seg.Path, off, tornEnd - off, durableEnd);
            }
            else if (off < strictUntil)
            {
                string expected = $"a record (the segment was durable up to offset {strictUntil})";
                Log.CorruptionFound(logger, seg.Path, off, expected);
                throw QueueCorruptedException.At(seg.Path, off, expected, "a zero commit word");
            }
            return (seq - seg.BaseSequence, off, false);
        }
    }

    /// <summary>
    /// A sealed segment whose watermark proves it complete (see <see cref="Frames.SealedEnd"/>); read with
    /// pread, not mapped. A v2 watermark's record count must also reach the next segment's base.
    /// </summary>
    private static bool IsTrustedSealed(Segment seg, SegmentHeader header, long nextBase) =>
        (header.DurableRecords is not { } records || seg.BaseSequence + records == nextBase) &&
        Frames.SealedEnd(header.DurableEnd, seg.Size, nextBase, (offset, into) =>
        {
            using var handle = QueueFiles.OpenExisting(seg.Path, write: false);
            return RandomAccess.Read(handle, into, offset) == into.Length;
        }) is not null;

    /// <summary>Writes the end-of-segment marker at <paramref name="offset"/> (the next record's sequence is in its CRC).</summary>
    public static void WriteEndMarker(Segment seg, int offset, long nextSequence)
    {
        if (offset + SegmentLayout.RecordHeaderSize > seg.Size) return; // exactly full: the end is implicit
        Frames.WriteCrc(seg.Bytes, offset, nextSequence, SegmentLayout.EndOfSegmentWord, 0);
        seg.PublishWord(offset, SegmentLayout.EndOfSegmentWord);
    }

    /// <summary>
    /// Stores the durable watermark (<paramref name="records"/> records before <paramref name="offset"/>) in the
    /// segment's header version; it reaches the disk with the next msync that covers the header.
    /// </summary>
    public static void SetWatermark(Segment seg, long offset, long records) => SegmentHeader.WriteWatermark(seg.Bytes, offset, records);
}
