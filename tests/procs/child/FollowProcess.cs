using Microsoft.Extensions.Logging;
using MmapQueues;
using MmapQueues.Tests.Procs;

/// <summary>
/// <c>follow DIR NAME</c> (NAME "-": an anonymous reader from the first stored record): a reader process of the crash
/// test. Prints START (its first position), COMMIT n after each durable commit (named), AT n when caught up, GAPS n
/// (records it never saw between two it read: aborted claims of a killed writer) on each line AT; exits 3 with BAD on
/// stderr at the first record out of order or with a payload not its own, and at the first skipped gap (event 1032:
/// a segment freed under it). Runs until stdin closes or it is killed.
/// </summary>
internal static class FollowProcess
{
    public static async Task<int> Run(string dir, string name)
    {
        var skips = new SkipCounter();
        using var queue = new MmapQueue(dir, new MmapQueueOptions { ReadOnly = true }, skips);
        using QueueReader reader = name == "-" ? queue.OpenReader(queue.FirstSequence, OutOfRange.Clamp) : queue.OpenReader(name);
        using var stop = new CancellationTokenSource();
        _ = Task.Run(() => { while (Console.ReadLine() is not null) { } stop.Cancel(); });
        Console.WriteLine($"START {reader.NextSequence}");
        long expected = reader.NextSequence, gaps = 0, lastAt = -1, sinceCommit = 0;
        while (!stop.IsCancellationRequested)
        {
            long before = reader.NextSequence;
            if (reader.TryRead(out ReadOnlySpan<byte> payload))
            {
                long sequence = reader.NextSequence - 1;
                if (skips.Count > 0) return Bad($"a gap was skipped before {sequence}: {skips.Last}");
                if (sequence < expected) return Bad($"record {sequence} after {expected - 1}: out of order");
                if (!WriterPayload.Matches(payload, sequence)) return Bad($"record {sequence}: a payload that is not its own (stale or torn)");
                gaps += sequence - Math.Max(expected, before);
                expected = sequence + 1;
                if (name != "-" && ++sinceCommit == 100) Commit(reader, ref sinceCommit);
                continue;
            }
            if (name != "-" && sinceCommit > 0) Commit(reader, ref sinceCommit);
            if (reader.NextSequence != lastAt)
            {
                lastAt = reader.NextSequence;
                Console.WriteLine($"AT {lastAt} GAPS {gaps}");
            }
            try
            {
                await reader.WaitToReadAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return 0;
    }

    private static void Commit(QueueReader reader, ref long sinceCommit)
    {
        reader.Commit();
        sinceCommit = 0;
        Console.WriteLine($"COMMIT {reader.NextSequence}");
    }

    private static int Bad(string what)
    {
        Console.Error.WriteLine("BAD " + what);
        return 3;
    }

    /// <summary>Counts event 1032 (ReaderSkippedDropped).</summary>
    private sealed class SkipCounter : ILoggerFactory, ILogger
    {
        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();
        public int Count;
        public string Last = "";
        public ILogger CreateLogger(string categoryName) => this;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id != 1032) return;
            Last = formatter(state, exception);
            Interlocked.Increment(ref Count);
        }
        public void Dispose() { }
    }
}
