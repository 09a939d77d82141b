namespace MmapQueues.Benchmarks.Compare;

/// <summary>What limits each row: one sentence each, from the profiles described in RESULTS.md.</summary>
internal static class Limits
{
    public const string Case1Small = "TBD";
    public const string Case1Large = "TBD";
    public const string Case2 = "TBD";
    public const string Case3Small = "TBD";
    public const string Case3Large = "TBD";
    public const string Case3Sync = "TBD";
    public const string Case4Latency = "TBD";
    public const string Case4Group = "TBD";
    public const string Case5 = "TBD";
    public const string Case6 = "TBD";
    public const string Case8 = "TBD";
}
