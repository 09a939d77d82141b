using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MmapQueues.Tests.App;

public class HostingTests
{
    private static HostApplicationBuilder Builder(TempDir dir, string json, CapturingLoggerFactory? logs = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = dir.Path,
            DisableDefaults = true, // no appsettings.json from disk, no environment variables: only the JSON below
        });
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        if (logs is not null) builder.Logging.AddProvider(logs);
        return builder;
    }

    [Fact]
    public async Task QueueIsWiredFromConfigurationOpenedAtStartAndDisposedOnShutdown()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        var builder = Builder(dir, """
            { "Queues": { "Orders": { "Path": "data/orders", "SegmentSizeBytes": 65536, "FlushMode": "Sync", "Preheat": false } } }
            """, logs);
        builder.Services.AddMmapQueue(builder.Configuration.GetSection("Queues:Orders"));
        MmapQueue queue;
        using (IHost host = builder.Build())
        {
            await host.StartAsync();
            Assert.Single(logs.WithId(1001)); // opened by the host's start, before anyone resolved it
            queue = host.Services.GetRequiredService<MmapQueue>();
            Assert.Equal(Path.Combine(dir.Path, "data", "orders"), queue.Path); // relative to the content root
            Assert.Equal(65536, queue.Options.SegmentSizeBytes);
            Assert.Equal(FlushMode.Sync, queue.Options.FlushMode);
            queue.Enqueue("order 1"u8);
            Assert.Equal(1, queue.DurableSequence); // Sync mode from configuration: durable on return
            await host.StopAsync();
        }
        Assert.True(queue.IsDisposed, "disposing the host must dispose the queue");
        using var reopened = new MmapQueue(Path.Combine(dir.Path, "data", "orders")); // the lock was released
        Assert.Equal(1, reopened.NextSequence);
    }

    [Fact]
    public async Task InvalidOptionsStopStartUpWithAMessageNamingTheSettingAndValue()
    {
        using var dir = new TempDir();
        var builder = Builder(dir, """{ "Q": { "Path": "q", "SegmentSizeBytes": 5000, "FlushMode": "Interval", "FlushInterval": "00:00:00" } }""");
        builder.Services.AddMmapQueue(builder.Configuration.GetSection("Q"));
        using IHost host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("SegmentSizeBytes must be a multiple of the page size 4096; found 5000 (904 bytes over).", e.Message);
        Assert.Contains("FlushInterval must be more than 0 and at most 1 hour in Interval mode; found 00:00:00.", e.Message);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "q")), "nothing may be created when the options are invalid");
    }

    [Fact]
    public async Task MissingPathStopsStartUpWithAMessageSayingWhatIsNeeded()
    {
        using var dir = new TempDir();
        var builder = Builder(dir, """{ "Q": { "FlushMode": "Async" } }""");
        builder.Services.AddMmapQueue(builder.Configuration.GetSection("Q"));
        using IHost host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("Path is required", e.Message);
    }

    [Fact]
    public async Task KeyedQueuesAreSeparateAndUseTheContainersLoggerAndMeterFactory()
    {
        using var dir = new TempDir();
        var logs = new CapturingLoggerFactory();
        var builder = Builder(dir, """
            { "Queues": { "a": { "Path": "qa", "SegmentSizeBytes": 65536, "Preheat": false },
                          "b": { "Path": "qb", "SegmentSizeBytes": 131072, "FlushMode": "Async", "Preheat": false } } }
            """, logs);
        builder.Services.AddKeyedMmapQueue("a", builder.Configuration.GetSection("Queues:a"));
        builder.Services.AddKeyedMmapQueue("b", builder.Configuration.GetSection("Queues:b"));
        using IHost host = builder.Build();
        var instruments = new List<Instrument>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (i, _) => { if (i.Meter.Name == "MmapQueue") lock (instruments) instruments.Add(i); },
        };
        listener.Start();
        await host.StartAsync();

        var a = host.Services.GetRequiredKeyedService<MmapQueue>("a");
        var b = host.Services.GetRequiredKeyedService<MmapQueue>("b");
        Assert.NotSame(a, b);
        Assert.Equal(Path.Combine(dir.Path, "qa"), a.Path);
        Assert.Equal(131072, b.Options.SegmentSizeBytes);
        Assert.Equal(2, logs.WithId(1001).Count());
        Assert.All(logs.WithId(1001), e => Assert.Equal("MmapQueues.MmapQueue", e.Category));
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        // Created through the container's IMeterFactory (other tests' queues, running in parallel, have their own
        // meters): ten instruments for each of the two queues.
        lock (instruments) Assert.Equal(20, instruments.Count(i => ReferenceEquals(i.Meter.Scope, factory)));
        await host.StopAsync();
    }

    [Fact]
    public void RegisteringTheSameQueueNameTwiceIsRefused()
    {
        var services = new ServiceCollection();
        services.AddKeyedMmapQueue("x", "/tmp/x");
        var e = Assert.Throws<InvalidOperationException>(() => services.AddKeyedMmapQueue("x", "/tmp/y"));
        Assert.Contains("keyed 'x' is already registered", e.Message);
    }

    [Fact]
    public async Task PathOverloadWithConfigureCallbackWorksWithoutConfiguration()
    {
        using var dir = new TempDir();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMmapQueue(dir.Sub("q")).Configure(o => { o.SegmentSizeBytes = 8192; o.Preheat = false; });
        await using var sp = services.BuildServiceProvider();
        var q = sp.GetRequiredService<MmapQueue>();
        Assert.Equal(8192, q.Options.SegmentSizeBytes);
        Assert.Equal(dir.Sub("q"), q.Path);
    }
}
