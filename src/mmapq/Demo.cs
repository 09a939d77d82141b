using System.Buffers.Binary;
using System.Diagnostics;

namespace MmapQueues.Cli;

/// <summary>
/// Appends four million 56-byte events (256 MiB of frames: several default 64 MiB segments, so the rate includes
/// segment rolls), reads them back in batches, says what is durable, then appends as many again while a named
/// consumer keeps up (steady state: rolls reuse the consumed segments). Each event is written straight into
/// the mapped segment (the claim API, binary fields, no string per event), and the code is run once on a scratch queue first,
/// so the timed rates are the queue's, not the JIT's.
/// </summary>
internal static class Demo
{
    /// <summary>Payload bytes per event: with the 8-byte frame header, a 64-byte frame.</summary>
    public const int EventSize = 56;

    public static int Run(TextWriter output, string directory, int count)
    {
        output.WriteLine($"MmapQueue demo: {count:N0} events of {EventSize} B into {Path.GetFullPath(directory)}");
        WarmUp();
        var options = new MmapQueueOptions { FlushMode = FlushMode.Interval, FlushInterval = TimeSpan.FromMilliseconds(200) };
        using var queue = new MmapQueue(directory, options);
        long first = queue.NextSequence;
        int segmentsBefore = queue.Segments.Length;

        var sw = Stopwatch.StartNew();
        Append(queue, count);
        double appendSeconds = sw.Elapsed.TotalSeconds;
        output.WriteLine($"  appended {count:N0} records in {appendSeconds * 1000:F0} ms: {count / appendSeconds / 1e6:F1} M records/s, " +
                         $"{count * (double)EventSize / appendSeconds / 1e9:F2} GB/s of payload " +
                         $"(sequences {first}..{queue.NextSequence - 1}, {queue.Segments.Length - segmentsBefore} new segment(s))");
        output.WriteLine($"  durable before Flush: sequences below {queue.DurableSequence} (interval flush every {options.FlushInterval.TotalMilliseconds} ms)");

        sw.Restart();
        queue.Flush();
        output.WriteLine($"  Flush (msync) took {sw.Elapsed.TotalMilliseconds:F1} ms; durable: every sequence below {queue.DurableSequence}");

        sw.Restart();
        (long read, long bytes) = ReadBack(queue, first);
        double readSeconds = sw.Elapsed.TotalSeconds;
        output.WriteLine($"  read back {read:N0} records ({bytes / 1e6:F1} MB of payload, CRC-checked, zero-copy, in batches) in {readSeconds * 1000:F0} ms: " +
                         $"{read / readSeconds / 1e6:F1} M records/s");
        output.WriteLine($"  queue now holds sequences [{queue.FirstSequence}, {queue.NextSequence}) in {queue.Segments.Length} segment(s) of {queue.Options.SegmentSizeBytes >> 20} MiB");

        // Steady state: a named consumer keeps up and commits, so retention frees consumed segments and the
        // writer's rolls reuse them (their pages still cached): no new file, no kernel zero-fill.
        sw.Restart();
        (long consumed, int maxSegments) = AppendWithConsumer(queue, count);
        double steadySeconds = sw.Elapsed.TotalSeconds;
        output.WriteLine($"  steady state: appended {count:N0} more while consumer \"demo\" read and committed them: {count / steadySeconds / 1e6:F1} M records/s " +
                         $"end to end; at most {maxSegments} segment files on disk (consumed segments are reused)");
        queue.Flush();
        output.WriteLine("  a process kill now loses nothing; a power loss loses nothing either (all flushed).");
        output.WriteLine("  the same workloads measured side by side: benchmarks/RESULTS.md, case 9 (default options: growing queue and steady state) and case 5 (read).");
        if (read != count || consumed != count)
        {
            output.WriteLine($"  MISMATCH: read back {read:N0} and consumed {consumed:N0} of {count:N0} appended each time");
            return 1;
        }
        return 0;
    }

    /// <summary>
    /// Appends <paramref name="count"/> events while a named consumer on another thread reads and commits each
    /// batch; returns how many it consumed and the most segment files the queue held meanwhile.
    /// </summary>
    private static (long Consumed, int MaxSegments) AppendWithConsumer(MmapQueue queue, int count)
    {
        long from = queue.NextSequence;
        using var consumer = queue.OpenReader("demo");
        consumer.Seek(from);
        int maxSegments = queue.Segments.Length;
        var reading = Task.Run(() =>
        {
            long n = 0, batches = 0;
            int idle = 0;
            while (n < count)
            {
                if (!consumer.TryReadBatch(out RecordBatch batch))
                {
                    // Caught up: look again a few times before sleeping (a wait-and-wake per batch would cost the
                    // writer a hand-off each time), then wait without spinning.
                    if (++idle < 64) Thread.SpinWait(64);
                    else consumer.WaitToReadAsync().AsTask().GetAwaiter().GetResult();
                    continue;
                }
                idle = 0;
                foreach (RecordView _ in batch) n++;
                if (++batches % 256 != 0 && n < count) continue;
                consumer.Commit(); // durable (an fdatasync of the cursors file): once per 256 batches, about a quarter segment
                Volatile.Write(ref maxSegments, Math.Max(Volatile.Read(ref maxSegments), queue.Segments.Length));
            }
            return n;
        });
        Append(queue, count);
        long consumed = reading.GetAwaiter().GetResult();
        return (consumed, Math.Max(maxSegments, queue.Segments.Length));
    }

    /// <summary>Appends <paramref name="count"/> events, each formatted in place by the claim callback.</summary>
    private static void Append(MmapQueue queue, int count)
    {
        long stamp = 0;
        for (int i = 0; i < count; i++)
        {
            // A millisecond clock read every 1024 events: the events carry a time, the loop does not pay a clock call each.
            if ((i & 1023) == 0) stamp = Environment.TickCount64;
            queue.Enqueue(EventSize, (Index: (long)i, Stamp: stamp), static (span, e) => Write(span, e.Index, e.Stamp));
        }
    }

    /// <summary>
    /// The event, little-endian: u64 index, i64 time (ms), then a 40-byte body. Written field by field into the
    /// claimed span: no string, no intermediate buffer. (Formatting the two numbers as text with TryFormat instead
    /// measured 2-3× slower than the whole binary append.)
    /// </summary>
    internal static void Write(Span<byte> span, long index, long stamp)
    {
        BinaryPrimitives.WriteInt64LittleEndian(span, index);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], stamp);
        "demo event: forty bytes of payload body."u8.CopyTo(span[16..]);
    }

    private static (long Records, long Bytes) ReadBack(MmapQueue queue, long from)
    {
        long read = 0, bytes = 0;
        using var reader = queue.OpenReader(from);
        while (reader.TryReadBatch(out RecordBatch batch))
            foreach (RecordView record in batch)
            {
                read++;
                bytes += record.Payload.Length;
            }
        return (read, bytes);
    }

    /// <summary>Runs the append and read paths (segment rolls included) on a small scratch queue, then deletes it.</summary>
    private static void WarmUp()
    {
        string scratch = Path.Combine(Path.GetTempPath(), $"mmapq-demo-warmup-{Environment.ProcessId}");
        try
        {
            using (var queue = new MmapQueue(scratch, new MmapQueueOptions { SegmentSizeBytes = 4 << 20, FlushMode = FlushMode.Async }))
            {
                // .NET compiles a method quickly first and optimizes it once it has been called often enough, in the
                // background, after the calls pause for 100 ms: rounds with pauses let that happen before timing.
                for (int round = 0; round < 4; round++)
                {
                    Append(queue, 100_000);
                    ReadBack(queue, queue.FirstSequence);
                    Thread.Sleep(150);
                }
            }
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }
}
