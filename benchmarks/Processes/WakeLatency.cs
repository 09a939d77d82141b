using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using MmapQueues.Native;
using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues.Benchmarks.Processes;

/// <summary>
/// Writer-to-sleeping-reader wake latency (issue 13): the time from just before the writer publishes to the
/// moment a reader that was asleep sees it, for (a) a reader in another process woken through the shared
/// futex of the notify page, (b) a reader thread in the same process through the same page, and (c) the
/// queue's own in-process path (Enqueue, then WaitToReadAsync + TryRead), and (d) the queue across processes: a
/// read-only queue in another process (<see cref="QueueAcrossProcesses"/>, which also measures the cross-process
/// read rate). The writer pauses between records
/// so that every sample starts from a reader asleep, which is the case a futex serves.
/// </summary>
/// <remarks>
/// dotnet run -c Release --project benchmarks -- wake [--samples N] (default 2000 per row).
/// The two processes share a 4 KiB "stamp" page (its own file, not a queue format): i64 sequence at 0 and the
/// writer's Stopwatch timestamp at 8 (CLOCK_MONOTONIC, the same clock in both processes).
/// </remarks>
internal static class WakeLatency
{
    private const int SequenceOffset = 0, StampOffset = 8;

    public static int Run(string[] args)
    {
        int samples = args.Length >= 2 && args[0] == "--samples" ? int.Parse(args[1]) : 2000;
        string dir = Path.Combine(Path.GetTempPath(), "mmapq-wake-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Console.WriteLine($"wake latency, {samples} samples per row, {Environment.ProcessorCount} CPUs, load {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine("| wake path | p50 | p99 | p99.9 | samples |\n|---|---|---|---|---|");
            Print("futex, reader in another process", CrossProcess(dir, samples));
            Print("futex, reader thread in the same process", SameProcess(dir, samples));
            Print("queue in-process (WaitToReadAsync)", QueueInProcess(Path.Combine(dir, "queue"), samples));
            Print("queue, read-only queue in another process (WaitToReadAsync)", QueueAcrossProcesses.Latency(Path.Combine(dir, "queue-x"), samples));
            var (here, there, records) = QueueAcrossProcesses.ReadRate(Path.Combine(dir, "queue-rate"), 4_000_000);
            Console.WriteLine($"\nread rate, {records:N0} records of 64 B in batches (best of three): in the writer's process " +
                              $"{here / 1e6:F1} M records/s, a read-only queue in another process {there / 1e6:F1} M records/s");
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The reader process: waits for each sequence and prints one latency in ticks per line.</summary>
    public static int Child(string[] args)
    {
        string dir = args[0];
        int samples = int.Parse(args[1]);
        using var wakeup = SharedWakeup.Open(dir, QueueFiles.DefaultFileMode, reader: true);
        using var stamps = MapStamps(dir);
        Console.WriteLine("READY");
        var output = new System.Text.StringBuilder();
        for (long i = 1; i <= samples; i++) output.AppendLine(WaitOne(wakeup, stamps, i).ToString());
        Console.Write(output);
        return 0;
    }

    private static long[] CrossProcess(string dir, int samples)
    {
        using var writer = SharedWakeup.Open(dir, QueueFiles.DefaultFileMode, reader: false);
        using var stamps = MapStamps(dir);
        using var child = Process.Start(ChildStart(dir, samples))!;
        if (child.StandardOutput.ReadLine() != "READY") throw new InvalidOperationException("the reader process did not start");
        Task<string> lines = child.StandardOutput.ReadToEndAsync();
        Publish(writer, stamps, samples);
        child.WaitForExit();
        return lines.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
    }

    private static long[] SameProcess(string dir, int samples)
    {
        using var writer = SharedWakeup.Open(dir, QueueFiles.DefaultFileMode, reader: false);
        using var reader = SharedWakeup.Open(dir, QueueFiles.DefaultFileMode, reader: true);
        using var stamps = MapStamps(dir);
        stamps.Span.Clear();
        var latencies = new long[samples];
        var thread = new Thread(() => { for (int i = 1; i <= samples; i++) latencies[i - 1] = WaitOne(reader, stamps, i); });
        thread.Start();
        Publish(writer, stamps, samples);
        thread.Join();
        return latencies;
    }

    private static long[] QueueInProcess(string path, int samples)
    {
        using var q = new MmapQueue(path, new MmapQueueOptions { SegmentSizeBytes = 16L << 20 });
        using var reader = q.OpenReader();
        var latencies = new long[samples];
        Task consume = Task.Run(async () =>
        {
            for (int i = 0; i < samples; i++)
            {
                long stamp;
                while (!TryReadStamp(reader, out stamp)) await reader.WaitToReadAsync();
                latencies[i] = Stopwatch.GetTimestamp() - stamp;
            }
        });
        Span<byte> payload = stackalloc byte[sizeof(long)];
        for (int i = 0; i < samples; i++)
        {
            Thread.Sleep(1); // the reader is back asleep
            MemoryMarshal.Write(payload, Stopwatch.GetTimestamp());
            q.Enqueue(payload);
        }
        consume.GetAwaiter().GetResult();
        return latencies;
    }

    private static bool TryReadStamp(QueueReader reader, out long stamp)
    {
        bool read = reader.TryRead(out ReadOnlySpan<byte> payload);
        stamp = read ? MemoryMarshal.Read<long>(payload) : 0;
        return read;
    }

    /// <summary>Each record: wait until the reader sleeps (it registered, then 1 ms), stamp, publish the sequence, wake.</summary>
    private static void Publish(SharedWakeup writer, MappedRegion stamps, int samples)
    {
        for (long i = 1; i <= samples; i++)
        {
            while (writer.WaitersForTests == 0) Thread.Yield();
            Thread.Sleep(1);
            MemoryMarshal.Write(stamps.Span[StampOffset..], Stopwatch.GetTimestamp());
            Volatile.Write(ref MemoryMarshal.AsRef<long>(stamps.Span[SequenceOffset..]), i); // the record's release store
            writer.AfterPublish();
        }
    }

    private static long WaitOne(SharedWakeup wakeup, MappedRegion stamps, long sequence)
    {
        if (!wakeup.WaitUntil(() => Volatile.Read(ref MemoryMarshal.AsRef<long>(stamps.Span[SequenceOffset..])) >= sequence, TimeSpan.FromSeconds(30)))
            throw new TimeoutException($"sequence {sequence} was not published within 30 s");
        return Stopwatch.GetTimestamp() - MemoryMarshal.Read<long>(stamps.Span[StampOffset..]);
    }

    private static MappedRegion MapStamps(string dir)
    {
        using SafeFileHandle file = File.OpenHandle(Path.Combine(dir, "stamps"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        RandomAccess.SetLength(file, 4096);
        return MappedRegion.Map(file, 4096, "stamps");
    }

    private static ProcessStartInfo ChildStart(string dir, int samples) => ChildStart("wake-child", dir, samples);

    /// <summary>This benchmark program again, as the reader process: <paramref name="command"/> DIR SAMPLES.</summary>
    internal static ProcessStartInfo ChildStart(string command, string dir, int samples)
    {
        string host = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") psi.ArgumentList.Add(typeof(WakeLatency).Assembly.Location);
        foreach (string a in new[] { command, dir, samples.ToString() }) psi.ArgumentList.Add(a);
        return psi;
    }

    private static void Print(string row, long[] ticks)
    {
        double[] us = ticks.Select(t => t * 1e6 / Stopwatch.Frequency).Order().ToArray();
        double At(double q) => us[Math.Min(us.Length - 1, (int)(q * us.Length))];
        Console.WriteLine($"| {row} | {At(0.50):F1} µs | {At(0.99):F1} µs | {At(0.999):F1} µs | {us.Length} |");
    }
}
