using Microsoft.Extensions.Logging;

namespace MmapQueues.Tests.Nats.Harness;

/// <summary>Collects log events (id and text) so a test can assert on them and show them when it fails.</summary>
internal sealed class ForwarderEvents : ILoggerFactory, ILogger
{
    private readonly List<(int Id, string Text)> _events = [];

    public IReadOnlyList<(int Id, string Text)> Events { get { lock (_events) return _events.ToList(); } }

    public override string ToString() => string.Join("\n", Events.Select(e => $"{e.Id}: {e.Text}"));

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_events) _events.Add((eventId.Id, formatter(state, exception) + (exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")));
    }

    public bool IsEnabled(LogLevel logLevel) => true;
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public ILogger CreateLogger(string categoryName) => this;
    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }
}
