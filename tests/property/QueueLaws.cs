using System.Buffers.Binary;
using FsCheck;
using FsCheck.Xunit;

namespace MmapQueues.Tests.Property;

/// <summary>
/// The queue's laws, one property each, over generated inputs (FsCheck shrinks a failure to a small case
/// and prints its seed). Segment sizes are small, so a few records roll. The model-based machine that mixes
/// every operation is <see cref="QueueModelTests"/>.
/// </summary>
public class QueueLaws
{
    private static readonly long[] SegmentSizes = [4096, 8192, 16384];

    private static MmapQueueOptions Options(byte segmentChoice) =>
        TestOptions.Small(segmentSize: SegmentSizes[segmentChoice % SegmentSizes.Length]);

    private static int Fit(int length, MmapQueue q) => Math.Min(length, q.MaxPayloadBytes);

    /// <summary>Round trip: every record reads back byte for byte as it was appended, across segment rolls.</summary>
    [Property(MaxTest = 60)]
    public void EveryRecordReadsBackAsItWasAppended(NonNegativeInt[] lengths, byte segmentChoice)
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(segmentChoice));
        int[] fitted = lengths.Select(l => Fit(l.Get % 5000, q)).ToArray();
        for (int i = 0; i < fitted.Length; i++) q.Enqueue(TestPayloads.For(i, fitted[i]));
        using var reader = q.OpenReader(0);
        for (int i = 0; i < fitted.Length; i++)
        {
            Assert.True(reader.TryRead(out var view), $"record {i} of {fitted.Length} missing");
            Assert.True(TestPayloads.Matches(view, i, fitted[i]), $"record {i} differs from what was appended");
        }
        Assert.False(reader.TryRead(out _), "a record past the last one appended");
    }

    /// <summary>Order: concurrent producers' records are read in sequence order, and each producer's in the order it appended them.</summary>
    [Property(MaxTest = 25)]
    public void EachProducersRecordsAreReadInTheOrderItAppendedThem(PositiveInt producerCount, PositiveInt perProducerCount, byte segmentChoice)
    {
        int producers = 1 + producerCount.Get % 4, perProducer = 1 + perProducerCount.Get % 300;
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(segmentChoice));
        var sequences = new long[producers][];
        Parallel.For(0, producers, new ParallelOptions { MaxDegreeOfParallelism = producers }, p =>
        {
            sequences[p] = new long[perProducer];
            Span<byte> record = stackalloc byte[8 + p * 3];
            for (int k = 0; k < perProducer; k++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(record, p);
                BinaryPrimitives.WriteInt32LittleEndian(record[4..], k);
                sequences[p][k] = q.Enqueue(record);
            }
        });
        var nextOf = new int[producers];
        using var reader = q.OpenReader(0);
        for (long seq = 0; seq < producers * perProducer; seq++)
        {
            Assert.True(reader.TryRead(out var view), $"record {seq} missing");
            int p = BinaryPrimitives.ReadInt32LittleEndian(view), k = BinaryPrimitives.ReadInt32LittleEndian(view[4..]);
            Assert.Equal(nextOf[p], k); // this producer's records arrive in its own order, none skipped
            Assert.Equal(sequences[p][k], seq); // and at the sequence its Enqueue returned
            nextOf[p]++;
        }
        Assert.All(nextOf, n => Assert.Equal(perProducer, n));
    }

    /// <summary>Dense sequences: appends get 0, 1, 2, ... with no gap or repeat, across rolls, aborted claims, reopens and kills.</summary>
    [Property(MaxTest = 40)]
    public void SequencesAreDenseAcrossRollsAbortedClaimsReopensAndKills(int[] ops, byte segmentChoice)
    {
        using var dir = new TempDir();
        MmapQueueOptions options = Options(segmentChoice);
        var q = new MmapQueue(dir.Path, options);
        long expected = 0;
        try
        {
            foreach (int op in ops)
            {
                switch ((op & int.MaxValue) % 10)
                {
                    case 0:
                        Assert.Throws<InvalidOperationException>(() => q.Enqueue(3, 0, static (_, _) => throw new InvalidOperationException("writer failed")));
                        expected++; // an aborted claim uses its sequence too
                        break;
                    case 1:
                    case 2:
                        if (op % 10 == 1) q.Dispose();
                        else q.SimulateCrash(); // a process kill loses nothing that was appended
                        q = new MmapQueue(dir.Path, options);
                        break;
                    default:
                        Assert.Equal(expected, q.Enqueue(TestPayloads.For(expected, Fit((op & 0x7FFF) % 500, q))));
                        expected++;
                        break;
                }
                Assert.Equal(expected, q.NextSequence);
            }
        }
        finally
        {
            q.Dispose();
        }
    }

    /// <summary>
    /// Recovery prefix: after a kill and a torn tail (bytes past the flush frontier zeroed, as a power cut
    /// loses pages), the queue opens to an intact prefix of what was appended that holds everything flushed.
    /// Past the flushed records, a zeroed frame followed by the intact next one reads as aborted (recovery takes
    /// it for a reservation whose claim was never stored); every record read is intact at its own sequence.
    /// </summary>
    [Property(MaxTest = 60)]
    public void RecoveryKeepsAnIntactPrefixHoldingEverythingFlushed(NonNegativeInt[] flushed, NonNegativeInt[] unflushed,
                                                                   NonNegativeInt tearAt, PositiveInt tearLength, byte segmentChoice)
    {
        using var dir = new TempDir();
        MmapQueueOptions options = Options(segmentChoice);
        var lengths = new List<int>();
        string lastPath;
        long tearFrom, size = options.SegmentSizeBytes;
        var q = new MmapQueue(dir.Path, options);
        try
        {
            foreach (var l in flushed) Append(q, lengths, l.Get);
            q.Flush();
            foreach (var l in unflushed) Append(q, lengths, l.Get);
            var last = q.Segments[^1];
            lastPath = last.Path;
            tearFrom = last.FlushedOffset + tearAt.Get % Math.Max(1, size - last.FlushedOffset); // never below what a flush made durable
        }
        finally
        {
            q.SimulateCrash();
        }
        using (var file = new FileStream(lastPath, FileMode.Open, FileAccess.Write))
        {
            file.Position = tearFrom;
            file.Write(new byte[Math.Min(tearLength.Get % 20_000 + 1, size - tearFrom)]);
        }

        using var reopened = new MmapQueue(dir.Path, options);
        long kept = reopened.NextSequence;
        Assert.InRange(kept, flushed.Length, lengths.Count);
        using var reader = reopened.OpenReader(0);
        long expected = 0;
        while (reader.TryRead(out var view))
        {
            long seq = reader.NextSequence - 1;
            Assert.True(seq == expected || seq >= flushed.Length, $"record {expected} (flushed) is missing");
            Assert.True(TestPayloads.Matches(view, seq, lengths[(int)seq]), $"record {seq} came back damaged");
            expected = seq + 1;
        }
        Assert.True(expected >= flushed.Length, $"flushed records from {expected} on are missing");
        Assert.Equal(kept, reader.NextSequence);

        static void Append(MmapQueue q, List<int> lengths, int length)
        {
            int fitted = Math.Min(length % 700, q.MaxPayloadBytes);
            q.Enqueue(TestPayloads.For(lengths.Count, fitted));
            lengths.Add(fitted);
        }
    }

    /// <summary>Consumer resume: a named consumer reopened (after a clean close or a kill) resumes exactly at its last commit.</summary>
    [Property(MaxTest = 40)]
    public void ANamedConsumerResumesAtItsLastCommit(int[] readsAndCommits, bool kill, byte segmentChoice)
    {
        using var dir = new TempDir();
        MmapQueueOptions options = Options(segmentChoice);
        const int records = 400, length = 40;
        long committed = 0;
        var q = new MmapQueue(dir.Path, options);
        try
        {
            for (int i = 0; i < records; i++) q.Enqueue(TestPayloads.For(i, length));
            using var reader = q.OpenReader("c");
            foreach (int op in readsAndCommits)
            {
                if ((op & int.MaxValue) % 3 == 0)
                {
                    reader.Commit();
                    committed = reader.NextSequence;
                    continue;
                }
                for (int n = (op & 0xFF) % 40; n > 0 && reader.TryRead(out _); n--) { }
            }
        }
        finally
        {
            if (kill) q.SimulateCrash();
            else q.Dispose();
        }
        using var reopened = new MmapQueue(dir.Path, options);
        using var resumed = reopened.OpenReader("c");
        Assert.Equal(committed, resumed.NextSequence);
        if (committed < records)
        {
            Assert.True(resumed.TryRead(out var view));
            Assert.True(TestPayloads.Matches(view, committed, length), $"record {committed} after resuming differs");
        }
    }

    /// <summary>
    /// Retention never deletes a record an open reader is about to read or a named consumer has not committed
    /// past; a reader's next record stays readable and intact after the pass.
    /// </summary>
    [Property(MaxTest = 40)]
    public void RetentionNeverDeletesUnderAReaderOrPastAConsumersCommit(byte[] readerPercents, byte[] commitPercents, byte segmentChoice)
    {
        using var dir = new TempDir();
        using var q = new MmapQueue(dir.Path, Options(segmentChoice));
        const int records = 600, length = 60;
        for (int i = 0; i < records; i++) q.Enqueue(TestPayloads.For(i, length));
        var readers = readerPercents.Take(3).Select(p => q.OpenReader(records * (p % 101) / 100)).ToList();
        try
        {
            var commits = new List<long>();
            byte[] targets = commitPercents.Take(3).ToArray();
            for (int i = 0; i < targets.Length; i++) q.OpenReader($"c{i}").Dispose(); // all registered (at 0) before any commit
            foreach (var (p, i) in targets.Select((p, i) => (p, i)))
            {
                using var consumer = q.OpenReader($"c{i}");
                consumer.Seek(records * (p % 101) / 100);
                consumer.Commit();
                commits.Add(consumer.NextSequence);
            }
            q.WaitForBackgroundWork(); // index builds hold segments just sealed for a moment
            q.ApplyRetention();

            long protectedFrom = readers.Select(r => r.NextSequence).Concat(commits).DefaultIfEmpty(0).Min();
            Assert.True(q.FirstSequence <= protectedFrom, $"retention deleted up to {q.FirstSequence}, past a reader or commit at {protectedFrom}");
            foreach (var r in readers)
            {
                long next = r.NextSequence;
                if (next == records) continue;
                Assert.True(r.TryRead(out var view), $"a reader at {next} lost its record");
                Assert.True(TestPayloads.Matches(view, next, length), $"record {next} differs after retention");
            }
        }
        finally
        {
            foreach (var r in readers) r.Dispose();
        }
    }
}
