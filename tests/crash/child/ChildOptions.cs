using System.Globalization;

namespace MmapQueues.CrashChild;

/// <summary>Command line of the crash child (every option is <c>--name value</c>).</summary>
internal sealed class ChildOptions
{
    public string Directory { get; private set; } = "";
    public FlushMode Mode { get; private set; } = FlushMode.Sync;
    public long SegmentBytes { get; private set; } = 64 * 1024;
    public int MaxExtra { get; private set; } = 200;
    public int Run { get; private set; }
    public int Producers { get; private set; } = 1;
    /// <summary>Async mode: Flush after this many records of a producer (0 = never flush: the canary).</summary>
    public int FlushEvery { get; private set; } = 16;
    public int IntervalMs { get; private set; } = 10;
    /// <summary>Stop appending (and idle until killed) after this many records in this run.</summary>
    public long MaxRecords { get; private set; } = long.MaxValue;
    public int SkipMsyncEveryNthFlush { get; private set; }
    /// <summary>Consumer mode: a named consumer reads alongside and commits after this many records (0 = no consumer).</summary>
    public int ConsumeEvery { get; private set; }
    public bool Preheat { get; private set; } = true;
    /// <summary>Odd producers append with the claim API (the payload is written inside the callback).</summary>
    public bool ClaimApi { get; private set; }
    /// <summary><see cref="MmapQueueOptions.RecycleSegments"/> for the queue.</summary>
    public bool RecycleSegments { get; private set; } = true;
    /// <summary>Disk-full scenario: the file that holds the space to give back once the disk is full.</summary>
    public string? Filler { get; private set; }
    /// <summary>Disk-full scenario: leave this many bytes free when making the filler.</summary>
    public long FillLeaveBytes { get; private set; } = 3 << 20;

    public static ChildOptions Parse(string[] args)
    {
        var o = new ChildOptions();
        for (int i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length) throw new ArgumentException($"option {args[i]} needs a value");
            string v = args[i + 1];
            switch (args[i])
            {
                case "--dir": o.Directory = v; break;
                case "--mode": o.Mode = Enum.Parse<FlushMode>(v, ignoreCase: true); break;
                case "--segment": o.SegmentBytes = Long(v); break;
                case "--max-extra": o.MaxExtra = (int)Long(v); break;
                case "--run": o.Run = (int)Long(v); break;
                case "--producers": o.Producers = (int)Long(v); break;
                case "--flush-every": o.FlushEvery = (int)Long(v); break;
                case "--interval-ms": o.IntervalMs = (int)Long(v); break;
                case "--max-records": o.MaxRecords = Long(v); break;
                case "--skip-msync-every": o.SkipMsyncEveryNthFlush = (int)Long(v); break;
                case "--consume-every": o.ConsumeEvery = (int)Long(v); break;
                case "--preheat": o.Preheat = bool.Parse(v); break;
                case "--claim-api": o.ClaimApi = bool.Parse(v); break;
                case "--recycle": o.RecycleSegments = bool.Parse(v); break;
                case "--fill": o.Filler = v; break;
                case "--fill-leave": o.FillLeaveBytes = Long(v); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (o.Directory.Length == 0) throw new ArgumentException("--dir is required");
        return o;
    }

    public MmapQueueOptions QueueOptions() => new()
    {
        SegmentSizeBytes = SegmentBytes,
        FlushMode = Mode,
        FlushInterval = TimeSpan.FromMilliseconds(IntervalMs),
        Preheat = Preheat,
        RecycleSegments = RecycleSegments,
        TestOnlySkipMsyncEveryNthFlush = SkipMsyncEveryNthFlush,
    };

    private static long Long(string v) => long.Parse(v, CultureInfo.InvariantCulture);
}
