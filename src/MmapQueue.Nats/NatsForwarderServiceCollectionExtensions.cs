using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MmapQueues;
using MmapQueues.Nats;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a hosted <see cref="NatsForwarder"/> that follows a queue from the container.</summary>
public static class NatsForwarderServiceCollectionExtensions
{
    /// <summary>
    /// Adds a hosted service that forwards the app's <see cref="MmapQueue"/> (registered with
    /// <c>AddMmapQueue</c>), or the one keyed <paramref name="queueKey"/>, into JetStream while the host runs
    /// (<see cref="NatsForwarderOptions.Follow"/> is forced on). It logs and meters through the container; a
    /// permanent error (<see cref="NatsForwardException"/>) ends the service with the error, which stops the host
    /// under the default <c>BackgroundServiceExceptionBehavior</c>. Call once per queue.
    /// </summary>
    public static IServiceCollection AddMmapQueueNatsForwarder(this IServiceCollection services, Action<NatsForwarderOptions> configure, string? queueKey = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new NatsForwarderOptions();
        configure(options);
        options.Follow = true;
        options.Validate(); // a bad option fails at registration, not on the first record
        services.AddSingleton<IHostedService>(sp => new NatsForwarderService(
            queueKey is null ? sp.GetRequiredService<MmapQueue>() : sp.GetRequiredKeyedService<MmapQueue>(queueKey),
            options, sp.GetService<ILoggerFactory>(), sp.GetService<IMeterFactory>()));
        return services;
    }
}

/// <summary>Runs one forwarder for the host's lifetime: starts with the host, stops (committing what was acknowledged) with it.</summary>
internal sealed class NatsForwarderService(MmapQueue queue, NatsForwarderOptions options, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var forwarder = new NatsForwarder(queue, options, loggerFactory, meterFactory);
        try
        {
            await forwarder.RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // the host is stopping: RunAsync committed the acknowledged prefix on its way out
        }
    }
}
