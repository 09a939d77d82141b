// Exports a queue to 127.0.0.1:<port> with ExportTo(Socket) (or ExportToAsync with "async"), so a test can
// watch its syscalls under strace.
// Usage: MmapQueue.Shipping.Child <queue path> <port> [async]
using System.Net;
using System.Net.Sockets;
using MmapQueues;

if (args.Length is not (2 or 3))
{
    Console.Error.WriteLine("usage: MmapQueue.Shipping.Child <queue path> <port> [async]");
    return 2;
}
using var queue = new MmapQueue(args[0]);
using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
socket.Connect(IPAddress.Loopback, int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
Console.Error.WriteLine("EXPORT-BEGIN"); // the test looks only at syscalls after this line's write
Console.Error.Flush();
long next = args.Length == 3 && args[2] == "async" ? await queue.ExportToAsync(socket) : queue.ExportTo(socket);
Console.Error.WriteLine($"EXPORT-END {next}");
return 0;
