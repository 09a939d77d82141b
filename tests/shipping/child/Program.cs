// Exports a queue to 127.0.0.1:<port> with ExportTo(Socket), so a test can watch its syscalls under strace.
// Usage: MmapQueue.Shipping.Child <queue path> <port>
using System.Net;
using System.Net.Sockets;
using MmapQueues;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: MmapQueue.Shipping.Child <queue path> <port>");
    return 2;
}
using var queue = new MmapQueue(args[0]);
using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
socket.Connect(IPAddress.Loopback, int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
Console.Error.WriteLine("EXPORT-BEGIN"); // the test looks only at syscalls after this line's write
Console.Error.Flush();
long next = queue.ExportTo(socket);
Console.Error.WriteLine($"EXPORT-END {next}");
return 0;
