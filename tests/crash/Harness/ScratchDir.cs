namespace MmapQueues.Tests.Crash.Harness;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class ScratchDir : IDisposable
{
    public ScratchDir(string? parent = null)
    {
        Path = System.IO.Path.Combine(parent ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mmapq-crash"), Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
