using MmapQueues.Processes;
using MmapQueues.Tests.Procs;

// The second process of the cross-process tests (tests/procs). Each command prints READY once it holds what
// the test checks, then one result line; commands that hold something keep it until stdin closes or the test
// kills the process. Output is line-based on stdout; failures go to stderr with a non-zero exit.
string command = args.Length > 0 ? args[0] : "";
string dir = args.Length > 1 ? args[1] : "";
switch (command)
{
    case "wait":
    {
        // wait DIR TIMEOUT_MS RECHECK_MS: sleeps until the file DIR/published exists; prints WOKE or TIMEOUT.
        using var wakeup = SharedWakeup.Open(dir, MmapQueues.Storage.QueueFiles.DefaultFileMode, reader: true);
        string flag = Path.Combine(dir, "published");
        Console.WriteLine("READY");
        bool woke = wakeup.WaitUntil(() => File.Exists(flag), TimeSpan.FromMilliseconds(int.Parse(args[2])),
            recheckInterval: TimeSpan.FromMilliseconds(int.Parse(args[3])));
        Console.WriteLine(woke ? "WOKE" : "TIMEOUT");
        return 0;
    }
    case "publish":
    {
        // publish DIR COUNT: the writer side, COUNT times; prints WAKES n (FUTEX_WAKE calls made).
        using var wakeup = SharedWakeup.Open(dir, MmapQueues.Storage.QueueFiles.DefaultFileMode, reader: false);
        Console.WriteLine("READY");
        for (int i = int.Parse(args[2]); i > 0; i--) wakeup.AfterPublish();
        Console.WriteLine($"WAKES {wakeup.WakeCalls}");
        return 0;
    }
    case "lease":
    {
        // lease DIR SEQ: registers a reader lease at SEQ; "advance N" lines move it; closing stdin removes it.
        using var lease = ReaderLease.Register(dir, long.Parse(args[2]), MmapQueues.Storage.QueueFiles.DefaultFileMode);
        Console.WriteLine("READY");
        while (Console.ReadLine() is { } line)
        {
            lease.Advance(long.Parse(line["advance ".Length..]));
            Console.WriteLine("OK");
        }
        return 0;
    }
    case "own":
    {
        // own DIR NAME: claims the named consumer; READY, or REFUSED and the message; holds it until stdin closes.
        ConsumerOwnership owner;
        try
        {
            owner = ConsumerOwnership.Claim(dir, args[2], MmapQueues.Storage.QueueFiles.DefaultFileMode);
        }
        catch (InvalidOperationException e)
        {
            Console.WriteLine("REFUSED " + e.Message);
            return 0;
        }
        using (owner)
        {
            Console.WriteLine("READY");
            while (Console.ReadLine() is not null) { }
        }
        return 0;
    }
    case "commit":
    {
        // commit DIR QUEUE_ID NAME FIRST COUNT: commits FIRST, FIRST+1, ... through a shared cursor store; DONE.
        // COUNT 0 commits until killed, printing READY after the first commit.
        using var store = MmapQueues.Storage.CursorStore.Open(dir, Guid.Parse(args[2]), shared: true);
        long first = long.Parse(args[4]), count = long.Parse(args[5]);
        for (long i = 0; count == 0 || i < count; i++)
        {
            store.Commit(args[3], first + i);
            if (count == 0 && i == 0) Console.WriteLine("READY");
        }
        Console.WriteLine("DONE");
        return 0;
    }
    case "writer":
    {
        // writer DIR SEGMENT_BYTES COUNT: a writer process (recycling on) with a named consumer "drain" that commits every
        // 100 records, so retention frees (recycles) segments behind it; READY once open, then waits for a "go" line;
        // DONE <recycled rolls> <first sequence> after COUNT records; then "drain" lines: commit all, FIRST <first sequence>.
        // Optional: PAUSE_MS (a sleep after every 100 records instead of 1 ms every 1000) and FLUSH_MS (the flush interval).
        var options = new MmapQueues.MmapQueueOptions { SegmentSizeBytes = long.Parse(args[2]), RecycleSegments = true };
        int pauseMs = args.Length > 4 ? int.Parse(args[4]) : 0;
        if (args.Length > 5) options.FlushInterval = TimeSpan.FromMilliseconds(int.Parse(args[5]));
        using var queue = new MmapQueues.MmapQueue(dir, options);
        using var drain = queue.OpenReader("drain");
        Console.WriteLine("READY");
        if (Console.ReadLine() != "go") return 0;
        long count = long.Parse(args[3]);
        for (long i = 0; i < count; i++)
        {
            queue.Enqueue(WriterPayload.For(i));
            if (i % 100 == 99) Drain(queue, drain);
            if (pauseMs > 0 && i % 100 == 99) Thread.Sleep(pauseMs);
            else if (pauseMs == 0 && i % 1000 == 999) Thread.Sleep(1); // let readers in other processes follow while it writes
        }
        Drain(queue, drain);
        Console.WriteLine($"DONE {queue.RecycledRolls} {queue.FirstSequence}");
        while (Console.ReadLine() is { } line)
        {
            if (line != "drain") continue;
            Drain(queue, drain);
            queue.WaitForBackgroundWork(); // index builds hold their segments while they run
            queue.ApplyRetention();
            Console.WriteLine($"FIRST {queue.FirstSequence}");
        }
        return 0;
    }
    case "consume":
    {
        // consume DIR NAME COUNT: opens the queue read-only and the named consumer NAME (REFUSED and the message if another
        // process owns it), READY, reads COUNT records (checked), commits, prints READ <next sequence>; holds it until stdin closes.
        using var queue = new MmapQueues.MmapQueue(dir, new MmapQueues.MmapQueueOptions { ReadOnly = true });
        MmapQueues.QueueReader reader;
        try
        {
            reader = queue.OpenReader(args[2]);
        }
        catch (InvalidOperationException e)
        {
            Console.WriteLine("REFUSED " + e.Message);
            return 0;
        }
        using (reader)
        {
            Console.WriteLine("READY");
            long target = reader.NextSequence + long.Parse(args[3]);
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            while (reader.NextSequence < target)
            {
                long sequence = reader.NextSequence;
                if (reader.TryRead(out ReadOnlySpan<byte> payload))
                {
                    if (!WriterPayload.Matches(payload, sequence)) throw new InvalidDataException($"record {sequence} has the wrong payload");
                }
                else if (!reader.WaitToReadAsync(timeout.Token).AsTask().GetAwaiter().GetResult()) break;
            }
            reader.Commit();
            Console.WriteLine($"READ {reader.NextSequence}");
            while (Console.ReadLine() is not null) { }
        }
        return 0;
    }
    case "produce":
    {
        // produce DIR SEGMENT_BYTES: a writer process appending record after record (WriterPayload) until a "stop" line;
        // READY once open, then STOPPED <next sequence>. Killed at any moment by the crash test.
        using var queue = new MmapQueues.MmapQueue(dir, new MmapQueues.MmapQueueOptions { SegmentSizeBytes = long.Parse(args[2]) });
        Console.WriteLine("READY");
        var stop = new ManualResetEventSlim();
        new Thread(() => { while (Console.ReadLine() is { } line && line != "stop") { } stop.Set(); }) { IsBackground = true }.Start();
        for (long n = 0; !stop.IsSet; n++)
        {
            long sequence = queue.NextSequence; // one producer thread: the sequence Enqueue gets
            if (queue.Enqueue(WriterPayload.For(sequence)) != sequence) throw new InvalidOperationException($"expected sequence {sequence}");
            if (n % 200 == 199) Thread.Sleep(1);
        }
        Console.WriteLine($"STOPPED {queue.NextSequence}");
        return 0;
    }
    case "hold":
    {
        // hold FILE ex|sh: opens FILE (creating it) and takes flock on it; READY; holds it until stdin closes (or SIGSTOP/kill).
        using var file = File.Open(dir, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
        FileLocks.Lock(file.SafeFileHandle, args[2] == "sh" ? MmapQueues.Native.Libc.LOCK_SH : MmapQueues.Native.Libc.LOCK_EX, dir);
        Console.WriteLine("READY");
        while (Console.ReadLine() is not null) { }
        return 0;
    }
    case "follow":
        return await FollowProcess.Run(dir, args[2]);
    default:
        Console.Error.WriteLine($"unknown command '{command}'");
        return 2;
}

static void Drain(MmapQueues.MmapQueue queue, MmapQueues.QueueReader drain)
{
    while (drain.TryReadBatch(out MmapQueues.RecordBatch batch)) _ = batch.Count;
    drain.Commit();
}
