using MmapQueues.Crash;

namespace MmapQueues.CrashChild;

/// <summary>
/// The disk-full run: take almost all free space with a preallocated filler file, append until a segment
/// cannot be created, check that everything appended is readable, give the space back, append again.
/// Runs in a child so that a SIGBUS (the failure this guards against) kills the child, not the test host.
/// </summary>
internal static class DiskFiller
{
    public static int Run(ChildOptions o)
    {
        long free = new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(o.Filler!))!).AvailableFreeSpace;
        long fill = free - o.FillLeaveBytes;
        using (var f = new FileStream(o.Filler!, new FileStreamOptions
               { Mode = FileMode.CreateNew, Access = FileAccess.Write, PreallocationSize = Math.Max(fill, 4096) }))
            f.Flush(flushToDisk: true);

        var queue = new MmapQueue(o.Directory, o.QueueOptions());
        Output.Line($"S {queue.NextSequence}");
        long appended = AppendUntilFull(queue, o, run: 0, limit: long.MaxValue);
        Output.Line($"R {ReadAll(queue, o)}");

        File.Delete(o.Filler!);
        Output.Line("D");
        appended += AppendUntilFull(queue, o, run: 1, limit: 200);
        queue.Flush();
        Output.Line($"A {queue.NextSequence - 1}");
        Output.Line($"R {ReadAll(queue, o)}");
        queue.Dispose();
        Output.Line("OK");
        return 0;
    }

    private static long AppendUntilFull(MmapQueue queue, ChildOptions o, int run, long limit)
    {
        byte[] buffer = new byte[TestRecord.TagBytes + o.MaxExtra];
        for (long k = 0; k < limit; k++)
        {
            long tag = TestRecord.Tag(run, 0, k);
            Span<byte> payload = buffer.AsSpan(0, TestRecord.Length(tag, o.MaxExtra));
            TestRecord.Fill(tag, payload);
            try
            {
                long seq = queue.Enqueue(payload);
                Output.Line($"E {seq} {tag}");
            }
            catch (IOException e)
            {
                Output.Line($"F {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
                return k;
            }
        }
        return limit;
    }

    private static long ReadAll(MmapQueue queue, ChildOptions o)
    {
        using var reader = queue.OpenReader(queue.FirstSequence);
        long n = 0;
        while (reader.TryRead(out ReadOnlySpan<byte> payload))
        {
            string? bad = TestRecord.Verify(payload, o.MaxExtra, out _);
            if (bad is not null) throw new InvalidDataException($"record {reader.NextSequence - 1}: {bad}");
            n++;
        }
        return n;
    }
}
