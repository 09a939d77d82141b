using FsCheck;
using FsCheck.Fluent;

namespace MmapQueues.Tests.Property;

/// <summary>
/// Drives the real queue and an in-memory model (a list of payloads, and each reader's next index) with
/// the same random operations, reopening between steps, and requires they never disagree. Readers 0-2
/// are anonymous; readers 3 and 4 are the named consumers "c3" and "c4", whose committed positions the
/// model keeps: after a reopen or a kill they resume exactly there (at-least-once), and retention may
/// only ever delete what every consumer committed past.
/// The laws it checks one at a time, each over its own generated input, are in <see cref="QueueLaws"/>.
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
    public sealed record Seek(int Reader, int Percent) : Op;
    public sealed record Commit(int Consumer) : Op;
    public sealed record Retention : Op;

    private const int FirstConsumer = 3;

    private static readonly Gen<Op> OpGen = Gen.Frequency(
        (40, Gen.Choose(0, 3000).Select(n => (Op)new Append(n % 7 == 0 ? n : n % 200))),
        (2, Gen.Choose(0, 100).Select(n => (Op)new ClaimThatThrows(n))),
        (8, Gen.Choose(0, 4).SelectMany(r => Gen.Choose(0, 100).Select(p => (Op)new OpenReader(r, p)))),
        (25, Gen.Choose(0, 4).SelectMany(r => Gen.Choose(1, 60).Select(c => (Op)new Read(r, c)))),
        (5, Gen.Choose(0, 4).SelectMany(r => Gen.Choose(0, 105).Select(p => (Op)new Seek(r, p)))),
        (6, Gen.Choose(FirstConsumer, 4).Select(c => (Op)new Commit(c))),
        (3, Gen.Constant((Op)new Retention())),
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
        // MMAPQ_PROPERTY_RUNS raises the count for a soak; a failure prints the seed to replay it.
        int runs = int.TryParse(Environment.GetEnvironmentVariable("MMAPQ_PROPERTY_RUNS"), out int n) ? n : 300;
        Prop.ForAll(arb, ops => Check(ops, segmentSizes[run++ % segmentSizes.Length]))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(runs).WithEndSize(120));
    }

    private static void Check(Op[] ops, long segmentSize)
    {
        using var temp = new TempDir();
        string dir = temp.Path;
        var options = new MmapQueueOptions { SegmentSizeBytes = segmentSize, FlushMode = FlushMode.Async };
        var model = new List<byte[]?>(); // null: an aborted claim (holds a sequence, never delivered)
        var modelReaders = new Dictionary<int, long>();
        var readers = new Dictionary<int, QueueReader>();
        var committed = new Dictionary<string, long>(); // named consumers' durable positions
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
                        byte[] payload = TestPayloads.For(model.Count, len);
                        Assert.Equal(model.Count, q.Enqueue(payload));
                        model.Add(payload);
                        break;
                    }
                    case ClaimThatThrows c:
                        Assert.Throws<InvalidOperationException>(() =>
                            q.Enqueue(c.Length, 0, static (_, _) => throw new InvalidOperationException("writer failed")));
                        model.Add(null);
                        break;
                    case OpenReader o when o.Reader >= FirstConsumer:
                    {
                        if (readers.Remove(o.Reader, out var old)) old.Dispose();
                        string name = $"c{o.Reader}";
                        long expected = committed.TryGetValue(name, out long c) ? c : q.FirstSequence; // new: the first retained
                        committed[name] = expected;
                        readers[o.Reader] = q.OpenReader(name);
                        Assert.Equal(expected, readers[o.Reader].NextSequence);
                        modelReaders[o.Reader] = expected;
                        break;
                    }
                    case OpenReader o:
                    {
                        long from = model.Count * o.FromPercent / 100;
                        if (readers.Remove(o.Reader, out var old)) old.Dispose();
                        if (from < q.FirstSequence) Assert.Throws<SequenceOutOfRangeException>(() => q.OpenReader(from));
                        readers[o.Reader] = q.OpenReader(from, OutOfRange.Clamp);
                        modelReaders[o.Reader] = Math.Max(from, q.FirstSequence);
                        Assert.Equal(modelReaders[o.Reader], readers[o.Reader].NextSequence);
                        break;
                    }
                    case Seek k when readers.TryGetValue(k.Reader, out var reader):
                    {
                        long target = (model.Count + 1) * k.Percent / 100; // up to a few past the end: not written yet
                        if (target < q.FirstSequence || target > model.Count)
                        {
                            var e = Assert.Throws<SequenceOutOfRangeException>(() => reader.Seek(target));
                            Assert.Equal(target > model.Count, e.NotYetWritten);
                            Assert.Equal(modelReaders[k.Reader], reader.NextSequence); // unmoved
                            break;
                        }
                        Assert.Equal(target, reader.Seek(target));
                        modelReaders[k.Reader] = target;
                        break;
                    }
                    case Commit cm when readers.TryGetValue(cm.Consumer, out var reader):
                        reader.Commit();
                        committed[$"c{cm.Consumer}"] = modelReaders[cm.Consumer];
                        break;
                    case Retention:
                        // With no reader holding a segment, retention deletes exactly the segments every
                        // consumer committed past: all of them before the one holding the slowest commit.
                        foreach (var rd in readers.Values) rd.Dispose();
                        readers.Clear();
                        modelReaders.Clear();
                        q.WaitForBackgroundWork(); // index builds briefly hold segments just sealed
                        q.ApplyRetention();
                        if (committed.Count > 0)
                        {
                            long slowest = committed.Values.Min();
                            var segments = q.Segments;
                            if (segments.Length > 1 && segments[1].BaseSequence <= slowest)
                                Assert.Fail($"segment [{segments[0].BaseSequence}, {segments[1].BaseSequence}) was fully consumed (slowest commit {slowest}) but kept");
                        }
                        break;
                    case Read r when readers.TryGetValue(r.Reader, out var reader):
                        for (int i = 0; i < r.Count; i++)
                        {
                            long next = modelReaders[r.Reader];
                            while (next < model.Count && model[(int)next] is null) next++;
                            bool got = reader.TryRead(out var view);
                            Assert.Equal(next < model.Count, got);
                            if (!got)
                            {
                                modelReaders[r.Reader] = next; // aborted records before the end were skipped
                                break;
                            }
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
                        Assert.Equal(committed, q.Consumers); // commits were durable when Commit returned
                        foreach (var (id, next) in modelReaders.ToArray())
                        {
                            if (id >= FirstConsumer)
                            {
                                // At-least-once: what was read after the last commit is read again.
                                readers[id] = q.OpenReader($"c{id}");
                                modelReaders[id] = committed[$"c{id}"];
                            }
                            else
                            {
                                readers[id] = q.OpenReader(next, OutOfRange.Clamp);
                                modelReaders[id] = Math.Max(next, q.FirstSequence); // retention may have passed it
                            }
                            Assert.Equal(modelReaders[id], readers[id].NextSequence);
                        }
                        break;
                }
                // Retention never deletes what a named consumer has not committed past, nor under a reader.
                if (committed.Count > 0) Assert.True(q.FirstSequence <= committed.Values.Min(), $"first {q.FirstSequence} passed a consumer's commit");
                foreach (var (id, next) in modelReaders) Assert.True(q.FirstSequence <= next, $"first {q.FirstSequence} passed reader {id} at {next}");
                Assert.Equal(0, q.DroppedRecords);
            }
            Assert.Equal(model.Count, q.NextSequence);
        }
        finally
        {
            foreach (var rd in readers.Values) rd.Dispose();
            q.Dispose();
        }
    }
}
