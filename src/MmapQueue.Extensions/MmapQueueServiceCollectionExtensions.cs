using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MmapQueues;
using MmapQueues.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="MmapQueue"/> instances in a service collection.</summary>
/// <remarks>
/// <para>Each queue is a singleton opened when the host starts (so a bad option, a corrupt file or a second
/// writer fails start-up, not the first request), flushed when the host stops, and disposed with the
/// container. Its logger comes from the container's <see cref="ILoggerFactory"/> and its <c>MmapQueue</c>
/// meter from the container's <see cref="IMeterFactory"/>.</para>
/// <para>A configuration section holds <c>Path</c> (the directory; relative paths resolve against the
/// content root) and any <see cref="MmapQueueOptions"/> property, for example
/// <c>{ "Path": "data/orders", "FlushMode": "Sync", "SegmentSizeBytes": 67108864 }</c>. Options are validated
/// once at start-up by a source-generated validator; an invalid value stops the host with a message naming it.</para>
/// </remarks>
public static class MmapQueueServiceCollectionExtensions
{
    /// <summary>Registers the app's <see cref="MmapQueue"/>, configured from <paramref name="section"/>.</summary>
    /// <returns>The options builder, to configure or validate further.</returns>
    public static OptionsBuilder<MmapQueueOptions> AddMmapQueue(this IServiceCollection services, IConfiguration section) =>
        Add(services, Options.Options.DefaultName, keyed: false, section, path: null);

    /// <summary>Registers the app's <see cref="MmapQueue"/> at <paramref name="path"/>.</summary>
    /// <returns>The options builder, to configure (<c>.Configure(o =&gt; ...)</c>) or bind further.</returns>
    public static OptionsBuilder<MmapQueueOptions> AddMmapQueue(this IServiceCollection services, string path) =>
        Add(services, Options.Options.DefaultName, keyed: false, section: null, path);

    /// <summary>
    /// Registers a keyed <see cref="MmapQueue"/> named <paramref name="name"/>, configured from
    /// <paramref name="section"/>; resolve it with <c>[FromKeyedServices("name")]</c> or <c>GetRequiredKeyedService</c>.
    /// </summary>
    public static OptionsBuilder<MmapQueueOptions> AddKeyedMmapQueue(this IServiceCollection services, string name, IConfiguration section) =>
        Add(services, name, keyed: true, section, path: null);

    /// <summary>Registers a keyed <see cref="MmapQueue"/> named <paramref name="name"/> at <paramref name="path"/>.</summary>
    public static OptionsBuilder<MmapQueueOptions> AddKeyedMmapQueue(this IServiceCollection services, string name, string path) =>
        Add(services, name, keyed: true, section: null, path);

    private static OptionsBuilder<MmapQueueOptions> Add(IServiceCollection services, string name, bool keyed, IConfiguration? section, string? path)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (keyed) ArgumentException.ThrowIfNullOrEmpty(name);
        if (section is null) ArgumentException.ThrowIfNullOrEmpty(path);

        QueueRegistry registry = GetOrAddRegistry(services);
        registry.Add(name, keyed);

        OptionsBuilder<QueueLocation> location = services.AddOptions<QueueLocation>(name);
        if (section is not null) location.Bind(section);
        else location.Configure(l => l.Path = path);
        location.ValidateOnStart();

        OptionsBuilder<MmapQueueOptions> options = services.AddOptions<MmapQueueOptions>(name);
        if (section is not null) options.Bind(section);
        options.ValidateOnStart();

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MmapQueueOptions>, MmapQueueOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<QueueLocation>, QueueLocationValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MmapQueueLifetime>());

        if (keyed) services.AddKeyedSingleton(name, (sp, _) => Open(sp, name));
        else services.AddSingleton(sp => Open(sp, name));
        return options;
    }

    private static QueueRegistry GetOrAddRegistry(IServiceCollection services)
    {
        foreach (ServiceDescriptor d in services)
            if (d.ServiceType == typeof(QueueRegistry) && !d.IsKeyedService && d.ImplementationInstance is QueueRegistry existing)
                return existing;
        var registry = new QueueRegistry();
        services.AddSingleton(registry);
        return registry;
    }

    private static MmapQueue Open(IServiceProvider sp, string name)
    {
        MmapQueueOptions options = sp.GetRequiredService<IOptionsMonitor<MmapQueueOptions>>().Get(name);
        string path = sp.GetRequiredService<IOptionsMonitor<QueueLocation>>().Get(name).Path!;
        string? root = sp.GetService<IHostEnvironment>()?.ContentRootPath;
        if (root is not null) path = System.IO.Path.Combine(root, path); // an absolute path wins
        return new MmapQueue(path, options, sp.GetService<ILoggerFactory>(), sp.GetService<IMeterFactory>());
    }
}
