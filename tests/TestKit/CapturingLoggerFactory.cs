using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MmapQueues.Tests;

/// <summary>One captured log entry.</summary>
public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception);

/// <summary>
/// The one fake logger of the test projects: keeps every entry, so tests assert event ids and messages,
/// count events, or wait for one without sleeping. A factory (pass it to <see cref="MmapQueue"/>) and a
/// provider (add it to a host's logging) at once.
/// </summary>
public sealed class CapturingLoggerFactory : ILoggerFactory, ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly SemaphoreSlim _logged = new(0);

    public IReadOnlyList<LogEntry> Entries => _entries.ToArray();

    public IEnumerable<LogEntry> WithId(int eventId) => Entries.Where(e => e.EventId.Id == eventId);

    public int Count(int eventId) => WithId(eventId).Count();

    /// <summary>Messages at <paramref name="atLeast"/> or above, in order.</summary>
    public IReadOnlyList<string> Messages(LogLevel atLeast = LogLevel.Warning) =>
        Entries.Where(e => e.Level >= atLeast).Select(e => e.Message).ToList();

    /// <summary>Waits until an event with <paramref name="eventId"/> was logged (or fails after a generous limit).</summary>
    public void WaitFor(int eventId)
    {
        var limit = DateTime.UtcNow.AddSeconds(30);
        while (!WithId(eventId).Any())
        {
            if (DateTime.UtcNow > limit) Assert.Fail($"event {eventId} was never logged");
            _logged.Wait(TimeSpan.FromSeconds(1));
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("this test factory has one provider: itself");

    public void Dispose() { }

    private sealed class Logger(CapturingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            owner._entries.Enqueue(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception));
            owner._logged.Release();
        }
    }
}
