using MmapQueues.Crash;

namespace MmapQueues.CrashChild;

/// <summary>Appends records from one or more producer threads until killed (or MaxRecords are written).</summary>
internal static class Appender
{
    public static int Run(ChildOptions o)
    {
        var queue = new MmapQueue(o.Directory, o.QueueOptions()); // never disposed: the test kills us
        Output.Line($"S {queue.NextSequence}");
        if (o.ConsumeEvery > 0) Consumer.Start(queue, o); // before the producers: it resumes where the last run committed
        long budget = o.MaxRecords;
        long acked = queue.DurableSequence; // interval mode: highest DurableSequence reported so far
        var threads = new Thread[o.Producers];
        for (int p = 0; p < threads.Length; p++)
        {
            int producer = p;
            threads[p] = new Thread(() => Produce(queue, o, producer, ref budget, ref acked)) { IsBackground = true };
            threads[p].Start();
        }
        foreach (var t in threads) t.Join();
        Output.Line("OK");
        Thread.Sleep(Timeout.Infinite); // the test decides when this process ends: SIGKILL, as a crash
        return 0;
    }

    private static void Produce(MmapQueue queue, ChildOptions o, int producer, ref long budget, ref long acked)
    {
        byte[] buffer = new byte[TestRecord.TagBytes + o.MaxExtra];
        for (long k = 0; Interlocked.Decrement(ref budget) >= 0; k++)
        {
            long tag = TestRecord.Tag(o.Run, producer, k);
            int length = TestRecord.Length(tag, o.MaxExtra);
            long seq;
            if (o.ClaimApi && producer % 2 == 1)
            {
                seq = queue.Enqueue(length, tag, static (span, t) =>
                {
                    // Half the payload, then give the core away: other producers publish behind this open claim,
                    // so a kill often finds a half-written claim with later records after it.
                    TestRecord.Fill(t, span);
                    span[(span.Length / 2)..].Clear();
                    Thread.Yield();
                    TestRecord.Fill(t, span);
                });
            }
            else
            {
                Span<byte> payload = buffer.AsSpan(0, length);
                TestRecord.Fill(tag, payload);
                seq = queue.Enqueue(payload);
            }
            Output.Line($"E {seq} {tag}");
            switch (o.Mode)
            {
                case FlushMode.Sync:
                    Output.Line($"A {seq}");
                    break;
                case FlushMode.Async when o.FlushEvery > 0 && (k + 1) % o.FlushEvery == 0:
                    queue.Flush(); // covers every record appended before the call, so seq and all below it
                    Output.Line($"A {seq}");
                    break;
                case FlushMode.Interval:
                    long durable = queue.DurableSequence; // every sequence below it is durable
                    long seen = Volatile.Read(ref acked);
                    if (durable > seen && Interlocked.CompareExchange(ref acked, durable, seen) == seen)
                        Output.Line($"A {durable - 1}");
                    break;
            }
        }
    }
}
