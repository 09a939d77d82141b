namespace MmapQueues.Tests;

/// <summary>A fresh directory under the system temp folder, deleted on dispose. Part of the test kit linked into every test project.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>A fresh directory under <paramref name="parent"/>, or under the temp folder's <c>mmapq-tests</c> when null.</summary>
    public TempDir(string? parent = null)
    {
        Path = System.IO.Path.Combine(parent ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mmapq-tests"), Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
