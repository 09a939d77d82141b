namespace MmapQueues.Benchmarks.Compare;

/// <summary>One line of the side-by-side table: a queue figure against its reference in the same run.</summary>
internal sealed record Row(
    string Case,
    string What,
    string Queue,
    string Reference,
    Spread Ratio,
    string RatioMeaning,
    string Target,
    bool? Met,
    string Limit);

/// <summary>A latency distribution (sorted samples in ns) for the percentile charts.</summary>
internal sealed record Distribution(string Name, long[] SortedNs);

/// <summary>Throughput of one implementation by payload size (bytes -> payload GB/s).</summary>
internal sealed record SizeCurve(string Name, SortedDictionary<int, double> GBps);

/// <summary>Everything one harness run produced.</summary>
internal sealed class Report
{
    public List<Row> Rows { get; } = new();
    public List<string> Notes { get; } = new();
    public Dictionary<string, List<Distribution>> Latencies { get; } = new();
    public List<SizeCurve> Curves { get; } = new();

    public void Add(Row row)
    {
        Rows.Add(row);
        string met = row.Met switch { true => "met", false => "MISSED", null => "-" };
        Console.WriteLine($"  [{row.Case}] {row.What}: queue {row.Queue} | ref {row.Reference} | {row.RatioMeaning} {row.Ratio.Format("0.00")} | target {row.Target}: {met}");
    }

    public void Note(string text)
    {
        Notes.Add(text);
        Console.WriteLine($"  note: {text}");
    }
}
