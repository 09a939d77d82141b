using MmapQueues.Crash;

namespace MmapQueues.CrashChild;

/// <summary>
/// Consumer mode: the named consumer <see cref="Name"/> reads behind the producers, checks every payload,
/// and commits every K records (and whenever it catches up with uncommitted reads), so a kill often lands
/// inside a commit's write or fdatasync of the cursors file.
/// </summary>
internal static class Consumer
{
    public const string Name = "c";

    public static void Start(MmapQueue queue, ChildOptions o)
    {
        QueueReader reader = queue.OpenReader(Name); // registers it durably at FirstSequence the first time
        Output.Line($"C {reader.NextSequence}");     // its durable committed position now
        new Thread(() => Run(queue, reader, o)) { IsBackground = true, Name = "consumer" }.Start();
    }

    private static void Run(MmapQueue queue, QueueReader reader, ChildOptions o)
    {
        try
        {
            int uncommitted = 0;
            long lastTag = -1, recycled = 0;
            while (true)
            {
                if (reader.TryRead(out ReadOnlySpan<byte> payload))
                {
                    string? bad = TestRecord.Verify(payload, o.MaxExtra, out long tag);
                    if (bad is not null) throw new InvalidDataException($"consumer read record {reader.NextSequence - 1}: {bad}");
                    // One producer: tags rise with the sequence (run, then k). A lower one is an older record read
                    // again: a previous lap's frame in a recycled segment.
                    if (tag <= lastTag)
                        throw new InvalidDataException($"consumer read record {reader.NextSequence - 1} with tag 0x{tag:X} after 0x{lastTag:X}: a stale frame");
                    lastTag = tag;
                    if (++uncommitted < o.ConsumeEvery) continue;
                }
                else if (uncommitted == 0)
                {
                    reader.WaitToReadAsync().AsTask().Wait();
                    continue;
                }
                long at = reader.NextSequence;
                Output.Line($"c {at}"); // a commit of <at> is in flight from here until the C line
                reader.Commit();
                Output.Line($"C {at}");
                if (queue.RecycledRolls != recycled) Output.Line($"Y {recycled = queue.RecycledRolls}");
                uncommitted = 0;
            }
        }
        catch (Exception e)
        {
            Output.Line($"X consumer: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }
}
