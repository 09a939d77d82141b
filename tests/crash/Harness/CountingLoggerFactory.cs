using Microsoft.Extensions.Logging;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>Counts the library's log events by id (torn tails truncated, segments dropped, corruption found).</summary>
internal sealed class CountingLoggerFactory : ILoggerFactory, ILogger
{
    public const int TornTailTruncated = 1002, DroppedSegmentAfterTear = 1003, CorruptionFound = 1004;

    private readonly Dictionary<int, int> _counts = new();
    private readonly List<string> _messages = new();

    public int Count(int eventId) { lock (_counts) return _counts.GetValueOrDefault(eventId); }
    public IReadOnlyList<string> Messages { get { lock (_counts) return _messages.ToList(); } }

    public ILogger CreateLogger(string categoryName) => this;
    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();
    public void Dispose() { }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_counts)
        {
            _counts[eventId.Id] = _counts.GetValueOrDefault(eventId.Id) + 1;
            if (logLevel >= LogLevel.Warning) _messages.Add(formatter(state, exception));
        }
    }
}
