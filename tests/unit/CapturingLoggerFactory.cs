using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MmapQueues.Tests;

/// <summary>Collects log events so tests can wait for one (no sleeps) and check what was logged.</summary>
internal sealed class CapturingLoggerFactory : ILoggerFactory
{
    public ConcurrentQueue<(int EventId, LogLevel Level, string Message)> Events { get; } = new();
    private readonly SemaphoreSlim _logged = new(0);

    public ILogger CreateLogger(string categoryName) => new Logger(this);
    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }

    /// <summary>Waits until an event with <paramref name="eventId"/> was logged (or fails after a generous limit).</summary>
    public void WaitFor(int eventId)
    {
        var limit = DateTime.UtcNow.AddSeconds(30);
        while (!Events.Any(e => e.EventId == eventId))
        {
            if (DateTime.UtcNow > limit) Assert.Fail($"event {eventId} was never logged");
            _logged.Wait(TimeSpan.FromSeconds(1));
        }
    }

    private sealed class Logger(CapturingLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            owner.Events.Enqueue((eventId.Id, logLevel, formatter(state, exception)));
            owner._logged.Release();
        }
    }
}
