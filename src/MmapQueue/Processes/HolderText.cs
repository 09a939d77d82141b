using System.Diagnostics;
using System.Text;

namespace MmapQueues.Processes;

/// <summary>
/// Who a process is, as the one line a lease or lock file records (pid, process name, user), and the reverse:
/// such a line read back from a file a local user may have written, made safe to print.
/// </summary>
internal static class HolderText
{
    /// <summary>The longest holder line stored or read back, in bytes of UTF-8.</summary>
    public const int MaxBytes = Format.LeaseLayout.MaxHolderLength;

    private static readonly Lazy<string> Current = new(() =>
    {
        using var self = Process.GetCurrentProcess();
        return Truncate($"pid {Environment.ProcessId} ({self.ProcessName}) user {Environment.UserName}");
    });

    /// <summary>This process: <c>pid 1234 (name) user alice</c>.</summary>
    public static string OfThisProcess => Current.Value;

    /// <summary>This process's line as UTF-8, at most <see cref="MaxBytes"/> bytes.</summary>
    public static byte[] OfThisProcessUtf8 => Encoding.UTF8.GetBytes(OfThisProcess);

    /// <summary>
    /// Text read from a holder field, fit to print in one line: invalid UTF-8 becomes U+FFFD, control characters
    /// (a planted newline or terminal escape) become '?', and empty text says so.
    /// </summary>
    public static string Sanitize(ReadOnlySpan<byte> utf8)
    {
        string text = Encoding.UTF8.GetString(utf8[..Math.Min(utf8.Length, MaxBytes)]).Trim();
        if (text.Length == 0) return "(no holder recorded)";
        var b = new StringBuilder(text.Length);
        foreach (char c in text) b.Append(char.IsControl(c) ? '?' : c);
        return b.ToString();
    }

    private static string Truncate(string s)
    {
        while (Encoding.UTF8.GetByteCount(s) > MaxBytes) s = s[..^1];
        return s;
    }
}
