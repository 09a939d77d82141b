using System.Text;
using System.Text.Json;
using MmapQueues.Storage;

namespace MmapQueues.Cli;

/// <summary>How dump and tail print a record.</summary>
internal enum RecordFormat
{
    /// <summary>One line: sequence, length, and the payload as UTF-8 with control characters escaped.</summary>
    Text,
    /// <summary>A header line with the position, then 16 bytes a line with an ASCII column.</summary>
    Hex,
    /// <summary>One JSON object a line: sequence, file, offset, length, payload in base64 (and as text when it is UTF-8).</summary>
    Json,
}

internal static class RecordPrinter
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void Print(TextWriter w, in InspectedRecord r, RecordFormat format)
    {
        switch (format)
        {
            case RecordFormat.Hex:
                PrintHex(w, r);
                break;
            case RecordFormat.Json:
                PrintJson(w, r);
                break;
            default:
                string body = r.Aborted ? "(aborted claim: no payload)" : Escape(r.Payload);
                w.WriteLine($"{r.Sequence}\t{r.Payload.Length}\t{body}");
                break;
        }
    }

    private static void PrintHex(TextWriter w, in InspectedRecord r)
    {
        w.WriteLine($"# sequence {r.Sequence}, {r.Payload.Length} bytes at {Path.GetFileName(r.File)} offset {r.Offset}{(r.Aborted ? " (aborted)" : "")}");
        var line = new StringBuilder(80);
        for (int i = 0; i < r.Payload.Length; i += 16)
        {
            line.Clear().Append(i.ToString("x8")).Append("  ");
            ReadOnlySpan<byte> chunk = r.Payload.Slice(i, Math.Min(16, r.Payload.Length - i));
            for (int j = 0; j < 16; j++) line.Append(j < chunk.Length ? chunk[j].ToString("x2") + " " : "   ");
            line.Append(" |");
            foreach (byte b in chunk) line.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
            w.WriteLine(line.Append('|'));
        }
    }

    private static void PrintJson(TextWriter w, in InspectedRecord r)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteNumber("sequence", r.Sequence);
            json.WriteString("file", Path.GetFileName(r.File));
            json.WriteNumber("offset", r.Offset);
            json.WriteNumber("length", r.Payload.Length);
            if (r.Aborted) json.WriteBoolean("aborted", true);
            json.WriteBase64String("payload", r.Payload);
            if (TryUtf8(r.Payload, out string? text)) json.WriteString("text", text);
            json.WriteEndObject();
        }
        w.WriteLine(Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length));
    }

    private static string Escape(ReadOnlySpan<byte> payload)
    {
        return TryUtf8(payload, out string? text) ? TerminalText.Escape(text) : "0x" + Convert.ToHexString(payload);
    }

    private static bool TryUtf8(ReadOnlySpan<byte> payload, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? text)
    {
        try
        {
            text = StrictUtf8.GetString(payload);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = null; // not text: the caller prints hex or base64 instead
            return false;
        }
    }
}
