using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MmapQueues.Shipping;
using MmapQueues.Tests.Shipping;

namespace MmapQueues.Benchmarks.Export;

/// <summary>
/// Plain, shared-secret and mutual-TLS shipping of the same queue, end to end into a real replica
/// (QueueReceiver: CRC check, copy into the mapping, msync), alternated round by round. Plain and
/// shared-secret both send with sendfile (the secret only authenticates the handshake); TLS writes from
/// the mapping through SslStream. CPU is the whole process's (sender and receiver together).
/// </summary>
internal static class AuthenticatedRuns
{
    public static void Run(MmapQueue queue, string root, long total, int rounds)
    {
        using var pki = new TestPki("bench CA");
        byte[] secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        var modes = new (string Name, ShippingAuthentication? Exporter, ShippingAuthentication? Receiver)[]
        {
            ("plain TCP (sendfile)", null, null),
            ("shared secret (HMAC handshake, then sendfile)", ShippingAuthentication.SharedSecret(secret), ShippingAuthentication.SharedSecret(secret)),
            ("mutual TLS (SslStream, copy from the mapping)", pki.Side("source"), pki.Side("replica")),
        };
        var results = modes.ToDictionary(m => m.Name, _ => new List<(double Seconds, double Cpu)>());
        for (int round = 0; round < rounds; round++)
            foreach (var m in round % 2 == 0 ? modes : modes.Reverse())
                results[m.Name].Add(Once(queue, Path.Combine(root, $"replica-{round}"), m.Exporter, m.Receiver));

        double gb = total / 1e9;
        Console.WriteLine();
        Console.WriteLine($"| end to end into a replica | GB/s (median of {rounds}) | process CPU s/GB (both ends) |");
        Console.WriteLine("|---|---|---|");
        foreach (var m in modes)
        {
            var r = results[m.Name];
            double Median(Func<(double Seconds, double Cpu), double> f) => r.Select(f).Order().ElementAt(r.Count / 2);
            Console.WriteLine($"| {m.Name} | {gb / Median(x => x.Seconds):F2} (min {gb / r.Max(x => x.Seconds):F2}, max {gb / r.Min(x => x.Seconds):F2}) | {Median(x => x.Cpu) / gb:F3} |");
        }
    }

    private static (double Seconds, double Cpu) Once(MmapQueue queue, string replica, ShippingAuthentication? exporter, ShippingAuthentication? receiver)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var a = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        a.Connect(listener.LocalEndPoint!);
        using Socket b = listener.Accept();
        var options = new ReceiverOptions { Authentication = receiver, QueueOptions = new MmapQueueOptions { FlushMode = FlushMode.Async } };
        TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        Task<long> rx = new QueueReceiver(replica, options).ReceiveAsync(b);
        long sent = new QueueExporter(queue, new ExportOptions { Authentication = exporter }).ExportAsync(a).GetAwaiter().GetResult();
        long got = rx.GetAwaiter().GetResult();
        double seconds = sw.Elapsed.TotalSeconds;
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        if (sent != got) throw new InvalidOperationException($"sent {sent}, the replica holds {got}");
        Directory.Delete(replica, true);
        return (seconds, cpu);
    }
}
