using System.Text;

namespace MmapQueues.CrashChild;

/// <summary>
/// The child's report to the test, one line per event, each written with its own write(2) to the pipe
/// (no user-space buffer): a line the test reads happened before the SIGKILL, and nothing that happened
/// is held back in a buffer the kill would discard (at most the line being written is lost).
/// </summary>
internal static class Output
{
    private static readonly Stream Stdout = Console.OpenStandardOutput();
    private static readonly object Gate = new();

    public static void Line(string text)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(text + "\n");
        lock (Gate) Stdout.Write(bytes);
    }
}
