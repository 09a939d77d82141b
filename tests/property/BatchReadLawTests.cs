using FsCheck;
using FsCheck.Fluent;

namespace MmapQueues.Tests.Property;

/// <summary>
/// The law of batch reads: for any records (some claims aborted), any batch size and any start, the batches
/// a reader hands out, concatenated, are exactly the records <see cref="QueueReader.TryRead"/> returns from
/// the same start, in the same order with the same sequences, and no batch exceeds its size.
/// </summary>
public class BatchReadLawTests
{
    private sealed record Case(int[] Lengths, int BatchSize, int StartPercent, long SegmentSize);

    // A negative length stands for a claim whose callback throws (an aborted record of that length).
    private static readonly Gen<Case> CaseGen =
        from lengths in Gen.ArrayOf(Gen.Frequency((9, Gen.Choose(0, 300)), (1, Gen.Choose(-100, -1)), (1, Gen.Choose(301, 1500))))
        from batch in Gen.Choose(1, 40)
        from start in Gen.Choose(0, 100)
        from segment in Gen.Elements(4096L, 8192L)
        select new Case(lengths.Take(400).ToArray(), batch, start, segment);

    [Fact]
    public void BatchesConcatenateToWhatTryReadReturns()
    {
        int runs = int.TryParse(Environment.GetEnvironmentVariable("MMAPQ_PROPERTY_RUNS"), out int n) ? n : 100;
        Prop.ForAll(Arb.From(CaseGen), Check).Check(Config.QuickThrowOnFailure.WithMaxTest(runs).WithEndSize(400));
    }

    private static void Check(Case c)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mmapq-prop", Guid.NewGuid().ToString("N"));
        try
        {
            using var q = new MmapQueue(dir, new MmapQueueOptions { SegmentSizeBytes = c.SegmentSize, FlushMode = FlushMode.Async });
            for (int i = 0; i < c.Lengths.Length; i++)
            {
                int length = c.Lengths[i];
                if (length >= 0)
                {
                    byte[] payload = new byte[length];
                    new Random(i).NextBytes(payload);
                    q.Enqueue(payload);
                }
                else
                {
                    try { q.Enqueue(-length, i, (_, s) => throw new InvalidOperationException($"abandon {s}")); }
                    catch (InvalidOperationException e) when (e.Message == $"abandon {i}") { } // expected: the claim is published as aborted
                }
            }
            long start = q.NextSequence * c.StartPercent / 100;

            var expected = new List<(long, byte[])>();
            using (var r = q.OpenReader(start))
                while (r.TryRead(out var p)) expected.Add((r.NextSequence - 1, p.ToArray()));

            var got = new List<(long, byte[])>();
            using (var r = q.OpenReader(start))
                while (r.TryReadBatch(out RecordBatch batch, c.BatchSize))
                {
                    if (batch.Count < 1 || batch.Count > c.BatchSize)
                        throw new InvalidOperationException($"a batch of {batch.Count} records with a limit of {c.BatchSize}");
                    foreach (RecordView rec in batch) got.Add((rec.Sequence, rec.Payload.ToArray()));
                    if (r.NextSequence != batch.NextSequence)
                        throw new InvalidOperationException($"reader at {r.NextSequence} after a batch ending at {batch.NextSequence}");
                }

            if (expected.Count != got.Count)
                throw new InvalidOperationException($"TryRead returned {expected.Count} records, batches {got.Count}");
            for (int i = 0; i < expected.Count; i++)
                if (expected[i].Item1 != got[i].Item1 || !expected[i].Item2.AsSpan().SequenceEqual(got[i].Item2))
                    throw new InvalidOperationException($"record {i}: TryRead gave sequence {expected[i].Item1}, a batch {got[i].Item1} (or different bytes)");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
