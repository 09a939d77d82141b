using System.Text;

namespace MmapQueues.Tests.App;

/// <summary>A text writer one thread can read (ToString) while another writes to it; StringWriter is not.</summary>
public sealed class SharedWriter : TextWriter
{
    private readonly StringBuilder _text = new();

    public override Encoding Encoding => Encoding.UTF8;
    public override void Write(char value) { lock (_text) _text.Append(value); }
    public override void Write(string? value) { lock (_text) _text.Append(value); }
    public override void Write(char[] buffer, int index, int count) { lock (_text) _text.Append(buffer, index, count); }
    public override void Write(ReadOnlySpan<char> buffer) { lock (_text) _text.Append(buffer); }
    public override string ToString() { lock (_text) return _text.ToString(); }
}

internal static class Repo
{
    /// <summary>The repository root (the directory holding MmapQueue.sln).</summary>
    public static string Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "MmapQueue.sln"))) return d.FullName;
            throw new DirectoryNotFoundException($"no MmapQueue.sln above {AppContext.BaseDirectory}");
        }
    }
}
