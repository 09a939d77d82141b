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
        new Thread(() => Run(reader, o)) { IsBackground = true, Name = "consumer" }.Start();
    }

    private static void Run(QueueReader reader, ChildOptions o)
    {
        try
        {
            int uncommitted = 0;
            while (true)
            {
                if (reader.TryRead(out ReadOnlySpan<byte> payload))
                {
                    string? bad = TestRecord.Verify(payload, o.MaxExtra, out _);
                    if (bad is not null) throw new InvalidDataException($"consumer read record {reader.NextSequence - 1}: {bad}");
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
                uncommitted = 0;
            }
        }
        catch (Exception e)
        {
            Output.Line($"X consumer: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }
}
