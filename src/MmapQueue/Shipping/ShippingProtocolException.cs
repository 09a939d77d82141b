namespace MmapQueues;

/// <summary>
/// The shipping peer sent bytes the protocol does not allow (bad magic or version, a length out of bounds,
/// a record whose CRC fails, a queue id that does not match, a position that does not line up). The
/// connection is ended; the replica keeps only the records it verified before the bad bytes.
/// </summary>
public sealed class ShippingProtocolException : IOException
{
    /// <summary>Creates the exception with a full message.</summary>
    public ShippingProtocolException(string message) : base(message) { }

    /// <summary>Creates the exception with a full message and the error that caused it.</summary>
    public ShippingProtocolException(string message, Exception inner) : base(message, inner) { }

    internal static ShippingProtocolException Field(string message, int offset, string expected, string found) =>
        new($"Shipping protocol error in {message} at byte {offset}: expected {expected}, found {found}.");
}
