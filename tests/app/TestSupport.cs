using System.Text;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MmapQueues.Tests.App;

/// <summary>One captured log entry.</summary>
public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception);

/// <summary>A logger provider that keeps every entry, for asserting event ids and messages.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider, ILoggerFactory
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyList<LogEntry> Entries => _entries.ToArray();

    public IEnumerable<LogEntry> WithId(int id) => Entries.Where(e => e.EventId.Id == id);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("this test factory has one provider: itself");

    public void Dispose() { }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception));
    }
}

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
