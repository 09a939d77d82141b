using FsCheck;
using FsCheck.Fluent;

namespace MmapQueues.Tests.Property;

/// <summary>
/// Drives the real queue and an in-memory model (a list of payloads, and each reader's next index) with
/// the same random operations, reopening between steps, and requires they never disagree.
/// </summary>
public class QueueModelTests
{
    public abstract record Op;
    public sealed record Append(int Length) : Op;
    public sealed record ClaimThatThrows(int Length) : Op;
    public sealed record OpenReader(int Reader, int FromPercent) : Op;
    public sealed record Read(int Reader, int Count) : Op;
    public sealed record Flush : Op;
    public sealed record Reopen : Op;
    public sealed record KillAndReopen : Op;

    private static readonly Gen<Op> OpGen = Gen.Frequency(
        (40, Gen.Choose(0, 3000).Select(n => (Op)new Append(n % 7 == 0 ? n : n % 200))),
        (2, Gen.Choose(0, 100).Select(n => (Op)new ClaimThatThrows(n))),
        (8, Gen.Choose(0, 2).SelectMany(r => Gen.Choose(0, 100).Select(p => (Op)new OpenReader(r, p)))),
        (25, Gen.Choose(0, 2).SelectMany(r => Gen.Choose(1, 60).Select(c => (Op)new Read(r, c)))),
        (6, Gen.Constant((Op)new Flush())),
        (5, Gen.Constant((Op)new Reopen())),
        (5, Gen.Constant((Op)new KillAndReopen())));

    private static IEnumerable<Op[]> Shrink(Op[] ops) =>
        Enumerable.Range(0, ops.Length).Select(i => ops.Where((_, j) => j != i).ToArray());

    [Fact]
    public void QueueAgreesWithTheModelUnderRandomOperations()
    {
        var arb = Arb.From(Gen.ArrayOf(OpGen).Select(a => a.Take(120).ToArray()), Shrink);
        var segmentSizes = new[] { 4096L, 8192L, 16384L };
        int run = 0;
        Prop.ForAll(arb, ops => Check(ops, segmentSizes[run++ % segmentSizes.Length]))
            .QuickCheckThrowOnFailure();
    }

    private static void Check(Op[] ops, long segmentSize)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mmapq-prop", Guid.NewGuid().ToString("N"));
        var options = new MmapQueueOptions { SegmentSizeBytes = segmentSize, FlushMode = FlushMode.Async };
        var model = new List<byte[]?>(); // null: an aborted claim (holds a sequence, never delivered)
        var modelReaders = new Dictionary<int, long>();
        var readers = new Dictionary<int, QueueReader>();
        var q = new MmapQueue(dir, options);
        try
        {
            foreach (Op op in ops)
            {
                switch (op)
                {
                    case Append a:
                    {
                        int len = Math.Min(a.Length, q.MaxPayloadBytes);
                        byte[] payload = Payload(model.Count, len);
                        Assert.Equal(model.Count, q.Enqueue(payload));
                        model.Add(payload);
                        break;
                    }
                    case ClaimThatThrows c:
                        Assert.Throws<InvalidOperationException>(() =>
                            q.Enqueue(c.Length, 0, static (_, _) => throw new InvalidOperationException("writer failed")));
                        model.Add(null);
                        break;
                    case OpenReader o:
                    {
                        long from = model.Count * o.FromPercent / 100;
                        if (readers.Remove(o.Reader, out var old)) old.Dispose();
                        readers[o.Reader] = q.OpenReader(from);
                        modelReaders[o.Reader] = from;
                        break;
                    }
                    case Read r when readers.TryGetValue(r.Reader, out var reader):
                        for (int i = 0; i < r.Count; i++)
                        {
                            long next = modelReaders[r.Reader];
                            while (next < model.Count && model[(int)next] is null) next++;
                            bool got = reader.TryRead(out var view);
                            Assert.Equal(next < model.Count, got);
                            if (!got) break;
                            Assert.True(view.SequenceEqual(model[(int)next]), $"payload of sequence {next} differs");
                            modelReaders[r.Reader] = next + 1;
                        }
                        break;
                    case Flush:
                        q.Flush();
                        Assert.Equal(model.Count, q.DurableSequence);
                        break;
                    case Reopen:
                    case KillAndReopen:
                        foreach (var rd in readers.Values) rd.Dispose();
                        readers.Clear();
                        if (op is Reopen) q.Dispose();
                        else q.SimulateCrash(); // a process kill loses nothing that was appended
                        q = new MmapQueue(dir, options);
                        Assert.Equal(model.Count, q.NextSequence);
                        Assert.Equal(model.Count, q.DurableSequence); // opening makes what it kept durable
                        foreach (var (id, next) in modelReaders) readers[id] = q.OpenReader(next);
                        break;
                }
            }
            Assert.Equal(model.Count, q.NextSequence);
        }
        finally
        {
            foreach (var rd in readers.Values) rd.Dispose();
            q.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static byte[] Payload(long seq, int length)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte)(seq * 131 + i * 3);
        return b;
    }
}
