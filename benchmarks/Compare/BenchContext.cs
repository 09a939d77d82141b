namespace MmapQueues.Benchmarks.Compare;

/// <summary>Run-wide settings and scratch space for the side-by-side cases.</summary>
internal sealed class BenchContext : IDisposable
{
    private int _next;

    public BenchContext(bool quick, string root)
    {
        Quick = quick;
        Root = root;
        Directory.CreateDirectory(root);
    }

    public bool Quick { get; }
    public string Root { get; }
    public Report Report { get; } = new();

    /// <summary>Repetitions: <paramref name="full"/> in a full run, one in a quick run.</summary>
    public int Reps(int full) => Quick ? 1 : full;

    /// <summary>A byte budget: <paramref name="full"/> in a full run, <paramref name="quick"/> in a quick run.</summary>
    public long Size(long full, long quick) => Quick ? quick : full;

    /// <summary>A fresh, empty path under the scratch root (deleted with <see cref="Delete"/>).</summary>
    public string NewPath(string name) => System.IO.Path.Combine(Root, $"{Interlocked.Increment(ref _next):D3}-{name}");

    public static void Delete(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        else if (File.Exists(path)) File.Delete(path);
    }

    public static MmapQueue OpenQueue(string dir, FlushMode mode, long segmentSize = MmapQueueOptions.DefaultSegmentSizeBytes) =>
        new(dir, new MmapQueueOptions { FlushMode = mode, SegmentSizeBytes = segmentSize });

    public static byte[] Payload(int size, int seed = 42)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    public void Dispose() => Delete(Root);
}
