using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MmapQueues.Nats;
using MmapQueues.Tests.Nats.Harness;
using NATS.Client.Core;

namespace MmapQueues.Tests.Nats;

public class HostingTests
{
    [RequiresNatsServerFact]
    public async Task AHostedForwarderFollowsTheQueueAndCommitsWhenTheHostStops()
    {
        const int n = 2_000;
        using var dir = new TempDir();
        using var server = NatsServer.StartSingle(dir.Sub("nats"));
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = dir.Path, DisableDefaults = true });
        builder.Services.AddMmapQueue("q");
        builder.Services.AddMmapQueueNatsForwarder(o =>
        {
            o.NatsOpts = NatsOpts.Default with { Url = server.Url };
            o.Stream = "HOSTED";
            o.Subject = "HOSTED.records";
        });
        using (IHost host = builder.Build())
        {
            await host.StartAsync();
            MmapQueue queue = host.Services.GetRequiredService<MmapQueue>();
            for (int i = 0; i < n; i++) queue.Enqueue(StreamCheck.Payload(i)); // appended while the forwarder follows
            Assert.True(SpinWait.SpinUntil(() => queue.Consumers.GetValueOrDefault(NatsForwarderOptions.DefaultConsumerName) == n, TimeSpan.FromSeconds(60)),
                $"the hosted forwarder committed {queue.Consumers.GetValueOrDefault(NatsForwarderOptions.DefaultConsumerName)} of {n}");
            await host.StopAsync();
        }
        await StreamCheck.AssertHoldsExactly(server.Url, "HOSTED", n);
    }

    [Fact]
    public void AnInvalidOptionFailsAtRegistrationNamingIt()
    {
        var services = new ServiceCollection();
        var e = Assert.Throws<ArgumentException>(() => services.AddMmapQueueNatsForwarder(o => { o.Stream = "S"; o.Subject = "a.*"; }));
        Assert.Contains("Subject must be a concrete subject (no wildcards, no spaces); found 'a.*'", e.Message);
    }
}
