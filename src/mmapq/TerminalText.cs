using System.Text;

namespace MmapQueues.Cli;

/// <summary>
/// Text from outside mmapq (a queue directory, a lock file, a peer, a payload) made safe to print: it can
/// carry escape sequences that move the cursor, rewrite earlier lines or retitle the terminal. Every such
/// string goes through <see cref="Escape"/> before it reaches a writer.
/// </summary>
internal static class TerminalText
{
    /// <summary>
    /// Returns <paramref name="text"/> with every control character (C0, DEL, C1, so ESC and CSI too) and every
    /// bidirectional override written as a visible escape (<c>\n</c>, <c>\t</c>, <c>\u001b</c>), and a
    /// backslash doubled, so the printed form is unambiguous and one line.
    /// </summary>
    public static string Escape(string text)
    {
        if (!NeedsEscape(text)) return text;
        var sb = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            if (c == '\\') sb.Append(@"\\");
            else if (IsUnsafe(c)) sb.Append(c switch { '\n' => @"\n", '\r' => @"\r", '\t' => @"\t", _ => $"\\u{(int)c:x4}" });
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool NeedsEscape(string text)
    {
        foreach (char c in text)
            if (c == '\\' || IsUnsafe(c)) return true;
        return false;
    }

    // Bidirectional embeddings, overrides and isolates reorder what follows them on screen.
    private static bool IsUnsafe(char c) => char.IsControl(c) || c is >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';
}
