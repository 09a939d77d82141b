using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MmapQueues.Extensions;

/// <summary>The queues registered in one service collection, so the lifetime service can open and flush them.</summary>
internal sealed class QueueRegistry
{
    private readonly List<(string Name, bool Keyed)> _queues = [];

    public IReadOnlyList<(string Name, bool Keyed)> Queues => _queues;

    public void Add(string name, bool keyed)
    {
        if (_queues.Any(q => q.Name == name && q.Keyed == keyed))
            throw new InvalidOperationException(keyed
                ? $"An MmapQueue keyed '{name}' is already registered; each key names one queue."
                : "The default MmapQueue is already registered; use AddKeyedMmapQueue for more queues.");
        _queues.Add((name, keyed));
    }

    public IEnumerable<MmapQueue> Resolve(IServiceProvider sp) =>
        _queues.Select(q => q.Keyed ? sp.GetRequiredKeyedService<MmapQueue>(q.Name) : sp.GetRequiredService<MmapQueue>());
}

/// <summary>
/// Opens every registered queue when the host starts (after options validation), so that a corrupt file or
/// a second writer stops start-up with its error; flushes them when the host stops. The container disposes them.
/// </summary>
internal sealed class MmapQueueLifetime(QueueRegistry registry, IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (MmapQueue _ in registry.Resolve(services)) { }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (MmapQueue queue in registry.Resolve(services))
            queue.Flush();
        return Task.CompletedTask;
    }
}
