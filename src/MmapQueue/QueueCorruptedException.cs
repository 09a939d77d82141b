namespace MmapQueues;

/// <summary>
/// A queue file holds bytes that cannot be what MmapQueue wrote: a bad checksum or header before the torn
/// tail, a length that runs past the segment, a missing segment. Nothing past the bad record is returned.
/// </summary>
public sealed class QueueCorruptedException : IOException
{
    /// <summary>Creates the exception with a full message.</summary>
    public QueueCorruptedException(string message, string filePath, long offset) : base(message)
    {
        FilePath = filePath;
        Offset = offset;
    }

    /// <summary>The file that holds the bad bytes.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset of the bad bytes within <see cref="FilePath"/>.</summary>
    public long Offset { get; }

    internal static QueueCorruptedException At(string path, long offset, string expected, string found) =>
        new($"Corrupt queue file {path} at offset {offset}: expected {expected}, found {found}.", path, offset);
}
