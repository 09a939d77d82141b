using MmapQueues.Processes;

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
    default:
        Console.Error.WriteLine($"unknown command '{command}'");
        return 2;
}
