using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using MmapQueues.Format;

namespace MmapQueues.Tests.Property;

/// <summary>
/// The law of recovery after a kill with several producers: for any records spread over several segments and
/// any of them left unfinished (a claim stored with a half-written payload, or a reservation whose claim was
/// never stored: a frame of zeros), reopening reads every other record intact at its own sequence, and the
/// queue's next sequence is unchanged. (Zero frames stay apart, not last, and leave room for the frame after
/// them: the recovery's search looks for the next sequence only, see docs/DECISIONS.md.)
/// </summary>
public class ClaimRecoveryLawTests
{
    private sealed record Case(int[] Lengths, int[] Victims, bool[] Gaps, long SegmentSize);

    private static readonly Gen<Case> CaseGen =
        from lengths in Gen.ArrayOf(Gen.Frequency((9, Gen.Choose(0, 300)), (1, Gen.Choose(301, 1500))))
        from victims in Gen.ArrayOf(Gen.Choose(0, 10_000))
        from gaps in Gen.ArrayOf(Gen.Elements(true, false))
        from segment in Gen.Elements(4096L, 8192L)
        select new Case(lengths.Take(300).Append(1).Append(2).ToArray(), victims.Take(8).ToArray(), gaps.Take(8).ToArray(), segment);

    [Fact]
    public void EveryRecordButTheUnfinishedOnesSurvivesAtItsSequence()
    {
        int runs = int.TryParse(Environment.GetEnvironmentVariable("MMAPQ_PROPERTY_RUNS"), out int n) ? n : 100;
        Prop.ForAll(Arb.From(CaseGen), Check).Check(Config.QuickThrowOnFailure.WithMaxTest(runs).WithEndSize(300));
    }

    private sealed record Frame(string Path, int Offset, int Length, long RoomAfter);

    private static void Check(Case c)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mmapq-prop", Guid.NewGuid().ToString("N"));
        try
        {
            var options = new MmapQueueOptions { SegmentSizeBytes = c.SegmentSize, FlushMode = FlushMode.Async, Preheat = false };
            var frames = new List<Frame>();
            var q = new MmapQueue(dir, options);
            for (int i = 0; i < c.Lengths.Length; i++) q.Enqueue(Payload(i, c.Lengths[i]));
            q.WaitForBackgroundWork();
            foreach (var seg in q.Segments)
            {
                seg.Acquire(); // sealed segments nobody reads are unmapped
                try
                {
                    var cursor = new FrameCursor(seg.Bytes, SegmentLayout.FirstRecordOffset, seg.BaseSequence);
                    while (cursor.Read(verifyCrc: false) == FrameKind.Payload)
                    {
                        int end = cursor.Offset + SegmentLayout.FrameLength(cursor.Payload.Length);
                        frames.Add(new Frame(seg.Path, cursor.Offset, cursor.Payload.Length, seg.Size - end));
                        cursor.Advance();
                    }
                }
                finally
                {
                    seg.Release();
                }
            }
            Assert.Equal(c.Lengths.Length, frames.Count);
            q.SimulateCrash();

            var victims = new HashSet<int>();
            for (int k = 0; k < c.Victims.Length; k++)
            {
                int v = c.Victims[k] % (frames.Count - 1); // never the last record: nothing after it to keep
                bool gap = k < c.Gaps.Length && c.Gaps[k];
                if (gap && (victims.Contains(v - 1) || victims.Contains(v + 1) || frames[v].RoomAfter < SegmentLayout.RecordHeaderSize)) gap = false;
                if (!victims.Add(v)) continue;
                Unfinish(frames[v], v, gap);
            }

            using var reopened = new MmapQueue(dir, options);
            Assert.Equal(c.Lengths.Length, reopened.NextSequence);
            using var r = reopened.OpenReader();
            var seen = new List<long>();
            while (r.TryRead(out var p))
            {
                long seq = r.NextSequence - 1;
                Assert.True(p.SequenceEqual(Payload(seq, c.Lengths[seq])), $"record {seq} differs");
                seen.Add(seq);
            }
            Assert.Equal(Enumerable.Range(0, c.Lengths.Length).Where(i => !victims.Contains(i)).Select(i => (long)i), seen);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A claim with the second half of its payload unwritten, or (a gap) a frame of zeros.</summary>
    private static void Unfinish(Frame f, long sequence, bool gap)
    {
        using var file = File.OpenHandle(f.Path, FileMode.Open, FileAccess.ReadWrite);
        var bytes = new byte[SegmentLayout.FrameLength(f.Length)];
        if (!gap)
        {
            RandomAccess.Read(file, bytes, f.Offset);
            uint word = SegmentLayout.ClaimedWord(f.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, word);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(SegmentLayout.RecordCrcOffset), SegmentLayout.ClaimCrc(sequence, word));
            bytes.AsSpan(SegmentLayout.RecordHeaderSize + f.Length / 2, f.Length - f.Length / 2).Clear();
        }
        RandomAccess.Write(file, bytes, f.Offset);
    }

    private static byte[] Payload(long seq, int length)
    {
        var p = new byte[length];
        new Random((int)seq).NextBytes(p);
        return p;
    }
}
