using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MmapQueues;
using MmapQueues.Nats;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

// Forward rate into NATS JetStream beside a bare NATS.Net publish loop with the same window, in one run, against
// one nats-server this program starts (R1, file store, a temp directory). Then the end-to-end lag: enqueue at a
// steady rate while a forwarder follows, and time each record from Enqueue to delivery by a stream consumer.
//   dotnet run -c Release --project benchmarks/Forward -- [records] [payloadBytes] [window] [batchBytes]
int records = args.Length > 0 ? int.Parse(args[0]) : 200_000;
int size = args.Length > 1 ? int.Parse(args[1]) : 64;
int window = args.Length > 2 ? int.Parse(args[2]) : 256;
int batchBytes = args.Length > 3 ? int.Parse(args[3]) : 64 << 10;

string root = Path.Combine(Path.GetTempPath(), "mmapq-forward-bench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(root);
int port;
using (var l = new TcpListener(IPAddress.Loopback, 0)) { l.Start(); port = ((IPEndPoint)l.LocalEndpoint).Port; }
using var server = Process.Start(new ProcessStartInfo("nats-server", $"-a 127.0.0.1 -p {port} -js -sd \"{Path.Combine(root, "nats")}\"")
    { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false })!;
server.BeginErrorReadLine();
server.BeginOutputReadLine();
string url = $"nats://127.0.0.1:{port}";
try
{
    await WaitForServer();
    byte[] payload = new byte[size];
    Random.Shared.NextBytes(payload);
    string queueDir = Path.Combine(root, "q");
    using (var q = new MmapQueue(queueDir, new MmapQueueOptions { FlushMode = FlushMode.Async, SegmentSizeBytes = 64 << 20 }))
    {
        for (int i = 0; i < records; i++) q.Enqueue(payload);
        // Every run's consumer exists from the start, so the runs before it cannot let retention delete records.
        for (int round = 0; round < 4; round++)
            foreach (string name in new[] { $"c{round}", $"b{round}" })
                using (QueueReader r = q.OpenReader(name)) r.Commit();
    }

    Console.WriteLine($"{records:N0} records x {size} B, window {window}, one nats-server 2.9 (R1, file store) on loopback");
    Console.WriteLine("| run | records/s | MB/s (payload) | vs bare loop |");
    Console.WriteLine("|-----|----------:|---------------:|-------------:|");
    var rates = new List<(double Bare, double PerRecord, double Batched)>();
    for (int round = 0; round < 4; round++) // round 0 warms the JIT and the server; rounds 1-3 are reported (median)
    {
        double bare = await Bare($"BARE{round}");
        double perRecord = await Forward(queueDir, $"FWD{round}", $"c{round}", 0);
        double batched = await Forward(queueDir, $"BATCH{round}", $"b{round}", batchBytes);
        if (round > 0) rates.Add((bare, perRecord, batched));
        if (round > 0) Console.Error.WriteLine($"round {round}: bare {bare:N0}/s, per record {perRecord:N0}/s ({perRecord / bare:F2}x), batched {batched:N0}/s");
    }
    double Median(Func<(double Bare, double PerRecord, double Batched), double> f) => rates.Select(f).Order().ElementAt(rates.Count / 2);
    double b0 = Median(r => r.Bare);
    Row("bare NATS.Net PublishConcurrentAsync loop (msg id set)", b0, b0);
    Row("NatsForwarder, one message per record", Median(r => r.PerRecord), b0);
    Row($"NatsForwarder, batched ({batchBytes >> 10} KiB messages)", Median(r => r.Batched), b0);
    Console.WriteLine($"per-record / bare, per round: {string.Join(", ", rates.Select(r => (r.PerRecord / r.Bare).ToString("F2")))}");
    await Lag(Path.Combine(root, "lag"));
}
finally
{
    server.Kill();
    server.WaitForExit();
    Directory.Delete(root, recursive: true);
}

void Row(string name, double rate, double bare) =>
    Console.WriteLine($"| {name} | {rate:N0} | {rate * size / 1e6:F1} | {rate / bare:F2}x |");

async Task<double> Bare(string stream)
{
    await using var nats = new NatsClient(url);
    INatsJSContext js = nats.CreateJetStreamContext();
    await js.CreateStreamAsync(new StreamConfig(stream, [stream + ".x"]));
    byte[] body = new byte[size];
    Random.Shared.NextBytes(body);
    var inflight = new Queue<NatsJSPublishConcurrentFuture>();
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < records; i++)
    {
        if (inflight.Count == window) await Collect(inflight.Dequeue());
        inflight.Enqueue(await js.PublishConcurrentAsync(stream + ".x", body, opts: new NatsJSPubOpts { MsgId = $"bare:{i}" }));
    }
    while (inflight.Count > 0) await Collect(inflight.Dequeue());
    double rate = records / sw.Elapsed.TotalSeconds;
    await Expect(stream, records, (long)records * size);
    return rate;

    static async Task Collect(NatsJSPublishConcurrentFuture f)
    {
        await using (f) (await f.GetResponseAsync()).EnsureSuccess();
    }
}

async Task<double> Forward(string dir, string stream, string consumer, int batch)
{
    using var q = new MmapQueue(dir, new MmapQueueOptions { FlushMode = FlushMode.Async });
    await using var f = new NatsForwarder(q, new NatsForwarderOptions
    {
        NatsOpts = NatsOpts.Default with { Url = url }, Stream = stream, Subject = stream + ".x", ConsumerName = consumer,
        MaxInFlight = window, BatchMaxBytes = batch,
    });
    var sw = Stopwatch.StartNew();
    long n = await f.RunAsync();
    if (n != records) throw new InvalidOperationException($"forwarded {n}, expected {records}");
    double rate = records / sw.Elapsed.TotalSeconds;
    if (batch == 0) await Expect(stream, records, (long)records * size);
    return rate;
}

// The stream really holds every message with its payload (stored bytes include subject and headers).
async Task Expect(string stream, long messages, long payloadBytes)
{
    await using var nats = new NatsClient(url);
    INatsJSStream s = await nats.CreateJetStreamContext().GetStreamAsync(stream);
    if ((long)s.Info.State.Messages != messages || (long)s.Info.State.Bytes < payloadBytes)
        throw new InvalidOperationException($"stream {stream} holds {s.Info.State.Messages} messages, {s.Info.State.Bytes} bytes; expected {messages} messages, at least {payloadBytes} bytes");
}

// Enqueue at a steady rate with a forwarder following, and time each record from Enqueue to delivery by a stream
// consumer; beside it the same rate published straight to a stream with NATS.Net (the floor on this machine).
async Task Lag(string dir)
{
    const int rate = 2000, seconds = 5;
    await using var nats = new NatsClient(url);
    INatsJSContext js = nats.CreateJetStreamContext();
    await js.CreateStreamAsync(new StreamConfig("LAGBARE", ["LAGBARE.x"]));
    List<double> bare = await Measure("LAGBARE", async body => await js.PublishAsync("LAGBARE.x", body));

    using var q = new MmapQueue(dir, new MmapQueueOptions { FlushMode = FlushMode.Async });
    await js.CreateStreamAsync(new StreamConfig("LAG", ["LAG.x"]));
    await using var f = new NatsForwarder(q, new NatsForwarderOptions
    {
        NatsOpts = NatsOpts.Default with { Url = url }, Stream = "LAG", Subject = "LAG.x", MaxInFlight = window, Follow = true,
    });
    using var stop = new CancellationTokenSource();
    Task forwarding = f.RunAsync(stop.Token);
    List<double> forwarded = await Measure("LAG", body => { q.Enqueue(body); return Task.CompletedTask; });
    stop.Cancel();
    try { await forwarding; } catch (OperationCanceledException) { }

    Console.WriteLine($"\nend-to-end lag, {rate} records/s for {seconds} s, to delivery by an ordered stream consumer (ms):");
    Console.WriteLine("| path | p50 | p99 | max |");
    Console.WriteLine("|------|----:|----:|----:|");
    Console.WriteLine($"| NATS.Net PublishAsync straight to the stream | {bare[bare.Count / 2]:F2} | {bare[(int)(bare.Count * 0.99)]:F2} | {bare[^1]:F2} |");
    Console.WriteLine($"| Enqueue, NatsForwarder following the queue | {forwarded[forwarded.Count / 2]:F2} | {forwarded[(int)(forwarded.Count * 0.99)]:F2} | {forwarded[^1]:F2} |");

    async Task<List<double>> Measure(string stream, Func<byte[], Task> send)
    {
        var lags = new List<double>();
        INatsJSConsumer consumer = await js.CreateOrderedConsumerAsync(stream);
        Task reading = Task.Run(async () =>
        {
            await foreach (NatsJSMsg<byte[]> m in consumer.ConsumeAsync<byte[]>())
            {
                lags.Add(Stopwatch.GetElapsedTime(BitConverter.ToInt64(m.Data!)).TotalMilliseconds);
                if (lags.Count == rate * seconds) return;
            }
        });
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < rate * seconds; i++)
        {
            while (sw.Elapsed.TotalSeconds * rate < i) await Task.Delay(1);
            byte[] body = new byte[size];
            BitConverter.TryWriteBytes(body, Stopwatch.GetTimestamp());
            await send(body);
        }
        await reading.WaitAsync(TimeSpan.FromSeconds(60));
        lags.Sort();
        return lags;
    }
}

async Task WaitForServer()
{
    for (int i = 0; ; i++)
    {
        try
        {
            await using var c = new NatsClient(url);
            await c.ConnectAsync();
            return;
        }
        catch (NatsException) when (i < 100)
        {
            await Task.Delay(100);
        }
    }
}
