using System.Diagnostics;
using System.Runtime.InteropServices;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Benchmarks.Processes;

/// <summary>
/// The queue itself across processes (issue 13): writer-to-reader latency when the reader is a read-only queue in
/// another process (Enqueue here; WaitToReadAsync + TryRead there), and the read rate of a read-only queue in
/// another process over a filled queue, beside the same read in the writer's process.
/// </summary>
/// <remarks>Part of <c>wake</c>; the reader process runs <c>wake-queue-child</c> or <c>rate-child</c>.</remarks>
internal static class QueueAcrossProcesses
{
    private const long SegmentBytes = 64L << 20;

    /// <summary>Enqueue stamps while a read-only queue in another process waits for each one.</summary>
    public static long[] Latency(string path, int samples)
    {
        using var q = new MmapQueue(path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes });
        using var waiters = SharedWakeup.Open(path, QueueFiles.DefaultFileMode, reader: false); // to see the reader asleep
        using var child = Process.Start(WakeLatency.ChildStart("wake-queue-child", path, samples))!;
        if (child.StandardOutput.ReadLine() != "READY") throw new InvalidOperationException("the reader process did not start");
        Task<string> lines = child.StandardOutput.ReadToEndAsync();
        Span<byte> payload = stackalloc byte[sizeof(long)];
        for (int i = 0; i < samples; i++)
        {
            while (waiters.WaitersForTests == 0) Thread.Yield();
            Thread.Sleep(1); // the reader is asleep in the futex
            MemoryMarshal.Write(payload, Stopwatch.GetTimestamp());
            q.Enqueue(payload);
        }
        child.WaitForExit();
        return lines.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
    }

    /// <summary>The reader process of <see cref="Latency"/>: one latency in ticks per line.</summary>
    public static int LatencyChild(string[] args)
    {
        using var q = new MmapQueue(args[0], new MmapQueueOptions { ReadOnly = true });
        using var reader = q.OpenReader(q.NextSequence);
        int samples = int.Parse(args[1]);
        Console.WriteLine("READY");
        var output = new System.Text.StringBuilder();
        for (int i = 0; i < samples; i++)
        {
            long stamp;
            while (!TryReadStamp(reader, out stamp)) reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult();
            output.AppendLine((Stopwatch.GetTimestamp() - stamp).ToString());
        }
        Console.Write(output);
        return 0;
    }

    private static bool TryReadStamp(QueueReader reader, out long stamp)
    {
        bool read = reader.TryRead(out ReadOnlySpan<byte> payload);
        stamp = read ? MemoryMarshal.Read<long>(payload) : 0;
        return read;
    }

    /// <summary>Fills a queue with 64 B records, then reads it all in batches here and in a read-only queue in another process.</summary>
    public static (double InProcess, double OtherProcess, long Records) ReadRate(string path, long records)
    {
        using var q = new MmapQueue(path, new MmapQueueOptions { SegmentSizeBytes = SegmentBytes, FlushMode = FlushMode.Async });
        Span<byte> payload = stackalloc byte[64];
        for (long i = 0; i < records; i++) q.Enqueue(payload);
        double here = 0;
        for (int run = 0; run < 3; run++) here = Math.Max(here, ReadAll(q)); // the best of three: warm JIT and page cache
        using var child = Process.Start(WakeLatency.ChildStart("rate-child", path, 0))!;
        double there = double.Parse(child.StandardOutput.ReadToEnd().Trim(), System.Globalization.CultureInfo.InvariantCulture);
        child.WaitForExit();
        return (here, there, records);
    }

    /// <summary>The reader process of <see cref="ReadRate"/>: the best of three full reads, records per second.</summary>
    public static int ReadRateChild(string[] args)
    {
        using var q = new MmapQueue(args[0], new MmapQueueOptions { ReadOnly = true });
        double best = 0;
        for (int run = 0; run < 3; run++) best = Math.Max(best, ReadAll(q));
        Console.WriteLine(best.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return 0;
    }

    private static double ReadAll(MmapQueue q)
    {
        using var reader = q.OpenReader(q.FirstSequence);
        long n = 0;
        var clock = Stopwatch.StartNew();
        while (reader.TryReadBatch(out RecordBatch batch)) n += batch.Count;
        return n / clock.Elapsed.TotalSeconds;
    }
}
