using System.Runtime.CompilerServices;

namespace MmapQueues;

/// <summary>Async consumption of a <see cref="QueueReader"/> for consumers that want copies.</summary>
public static class QueueReaderAsyncExtensions
{
    /// <summary>
    /// Yields every record from the reader's position on, waiting (without spinning a core) for new ones,
    /// until the queue is disposed or <paramref name="cancellationToken"/> fires. Each item is a fresh copy
    /// the caller may keep; the zero-copy <see cref="QueueReader.TryRead"/> stays the fast path for
    /// consumers that can work on a view.
    /// </summary>
    /// <remarks>
    /// The reader advances as items are yielded; do not call <c>TryRead</c> on it while enumerating. For a
    /// <c>System.Threading.Channels</c> channel with back-pressure, use
    /// <see cref="QueueReaderChannelExtensions.AsChannelReader"/>.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired.</exception>
    /// <exception cref="QueueCorruptedException">A record failed its checks.</exception>
    public static async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAllAsync(this QueueReader reader,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            // Drain what is visible; a producer faster than the consumer must not starve cancellation.
            while (!cancellationToken.IsCancellationRequested && TryReadCopy(reader, out byte[]? copy))
                yield return copy;
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private static bool TryReadCopy(QueueReader reader, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? copy)
    {
        copy = reader.TryRead(out ReadOnlySpan<byte> view) ? view.ToArray() : null;
        return copy is not null;
    }
}
