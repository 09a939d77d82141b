namespace MmapQueues.Shipping;

/// <summary>
/// A shipping session was refused or broken off: the peer sent bytes the protocol does not allow (bad
/// magic or version, a length out of bounds, a record whose CRC fails, a position that does not line up),
/// failed authentication, or refused this side. The connection is ended; a replica keeps only the records
/// it verified before the bad bytes.
/// </summary>
public sealed class ShippingProtocolException : IOException
{
    /// <summary>Creates the exception with a full message (code <c>protocol</c>).</summary>
    public ShippingProtocolException(string message) : this(message, ShippingErrorCode.Protocol) { }

    /// <summary>Creates the exception with a full message and the error that caused it (code <c>protocol</c>).</summary>
    public ShippingProtocolException(string message, Exception inner) : base(message, inner) => Code = ShippingErrorCode.Protocol;

    internal ShippingProtocolException(string message, string code, Exception? inner = null) : base(message, inner) => Code = code;

    /// <summary>
    /// The short code sent to (or received from) the peer, one of: <c>version</c>, <c>auth</c>,
    /// <c>auth-mode</c>, <c>source</c>, <c>resume</c>, <c>protocol</c>, <c>record</c>, <c>busy</c>,
    /// <c>limit</c>, <c>timeout</c>, <c>internal</c>. The message holds the details; the peer sees only the code.
    /// </summary>
    public string Code { get; }

    /// <summary>True when the peer sent this error (an ERROR message): this side does not answer it.</summary>
    internal bool FromPeer { get; init; }

    internal static ShippingProtocolException Field(string message, int offset, string expected, string found, string code = ShippingErrorCode.Protocol) =>
        new($"Shipping protocol error in {message} at byte {offset}: expected {expected}, found {found}.", code);
}

/// <summary>
/// The codes an ERROR message carries, each with one fixed sentence: what a peer learns about a failure.
/// Never a position, a path or a queue id; the details go to the local exception and log.
/// </summary>
internal static class ShippingErrorCode
{
    public const string Version = "version", Auth = "auth", AuthMode = "auth-mode", Source = "source", Resume = "resume",
        Protocol = "protocol", Record = "record", Busy = "busy", Limit = "limit", Timeout = "timeout", Internal = "internal";

    /// <summary>The ERROR body for <paramref name="code"/>: "code: sentence".</summary>
    public static string Text(string code) => code + ": " + code switch
    {
        Version => $"protocol version mismatch; this side speaks shipping protocol {WireProtocol.ProtocolVersion}",
        Auth => "authentication failed",
        AuthMode => "authentication mode mismatch (TLS, shared secret or none must match on both sides)",
        Source => "this replica belongs to another source queue, or its segment size differs",
        Resume => "the replica's position is not one this source shipped",
        Record => "a record failed its checks",
        Busy => "another session for this replica is in progress",
        Limit => "a limit of this replica was exceeded",
        Timeout => "timed out",
        Protocol => "the message violates the shipping protocol",
        _ => "the peer failed; see its log",
    };

    /// <summary>The code for a failure on this side (a protocol exception carries its own; anything else is internal).</summary>
    public static string Of(Exception e) => e switch
    {
        ShippingProtocolException p => p.Code,
        TimeoutException => Timeout,
        QueueFullException => Limit,
        _ => Internal,
    };

    /// <summary>
    /// Makes a peer's ERROR body safe to show: printable ASCII kept, anything else (escape sequences,
    /// control bytes, non-ASCII) written as \xNN, so a hostile peer cannot drive the terminal.
    /// </summary>
    public static string Sanitize(ReadOnlySpan<byte> text)
    {
        var sb = new System.Text.StringBuilder(text.Length);
        foreach (byte c in text)
            if (c is >= 0x20 and < 0x7F && c != (byte)'\\') sb.Append((char)c);
            else sb.Append($"\\x{c:X2}");
        return sb.ToString();
    }

    /// <summary>The code at the start of a sanitized ERROR body (up to the first ':').</summary>
    public static string CodeOf(string sanitized)
    {
        int colon = sanitized.IndexOf(':');
        string code = colon < 0 ? sanitized : sanitized[..colon];
        return code.Length is > 0 and <= 16 ? code : Internal;
    }
}
