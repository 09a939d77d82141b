using System.Threading.Channels;

namespace MmapQueues;

/// <summary>A <see cref="QueueReader"/> as a <c>System.Threading.Channels</c> channel, for pipelines built on channels.</summary>
public static class QueueReaderChannelExtensions
{
    /// <summary>
    /// Starts a pump that reads the queue from the reader's position into a bounded channel of
    /// <paramref name="capacity"/> records and returns the channel's reader.
    /// </summary>
    /// <remarks>
    /// <para><b>Back-pressure.</b> The pump waits for room in the channel before it reads the next record from
    /// the queue, so it is never more than <paramref name="capacity"/> records ahead of the consumer; a slow
    /// consumer leaves the rest in the queue (on disk), not in memory.</para>
    /// <para><b>Copies.</b> Each item's payload is a copy. The zero-copy view <see cref="QueueReader.TryRead"/>
    /// returns is valid only until the reader's next read and points into a segment that retention may delete
    /// once the reader has left it; an item in a channel outlives both, so it must own its bytes.</para>
    /// <para><b>Named consumers.</b> The pump reads ahead, so the reader's own position is not what was
    /// processed: commit with <see cref="QueueReader.CommitAt"/> and <c>record.Sequence + 1</c> after
    /// processing a record. Records read ahead but not committed are delivered again after a restart
    /// (at-least-once, as for any named consumer).</para>
    /// <para><b>Ownership and stop.</b> The pump owns the reader: do not read from it meanwhile. It stops when
    /// <paramref name="cancellationToken"/> fires (the channel's <c>Completion</c> is then canceled), when the
    /// queue is disposed (<c>Completion</c> succeeds), or when a read fails, e.g. a corrupt record
    /// (<c>Completion</c> faults with that <see cref="QueueCorruptedException"/>). Records already in the
    /// channel can still be read first. On stopping, the pump disposes the reader and only then completes the
    /// channel; a commit that races the stop can throw <see cref="ObjectDisposedException"/>.</para>
    /// </remarks>
    /// <param name="reader">The reader to consume; the pump takes it over.</param>
    /// <param name="capacity">Most records read from the queue and not yet taken from the channel (at least 1).</param>
    /// <param name="cancellationToken">Stops the pump.</param>
    public static ChannelReader<QueueRecord> AsChannelReader(this QueueReader reader, int capacity, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var channel = Channel.CreateBounded<QueueRecord>(new BoundedChannelOptions(capacity)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _ = Task.Run(() => PumpAsync(reader, channel.Writer, cancellationToken), CancellationToken.None);
        return channel.Reader;
    }

    private static async Task PumpAsync(QueueReader reader, ChannelWriter<QueueRecord> writer, CancellationToken ct)
    {
        Exception? error = null;
        try
        {
            // Room first, then read: the queue is never read further than the channel can hold.
            while (await writer.WaitToWriteAsync(ct).ConfigureAwait(false))
            {
                if (!reader.TryRead(out ReadOnlySpan<byte> view))
                {
                    if (!await reader.WaitToReadAsync(ct).ConfigureAwait(false)) break; // the queue was disposed
                    continue;
                }
                // After a successful read the reader stands just past the record it returned.
                var record = new QueueRecord(reader.NextSequence - 1, view.ToArray());
                if (!writer.TryWrite(record)) // only this pump writes and only consumers take: the room is still there
                    throw new InvalidOperationException($"The channel refused record {record.Sequence} although it had room.");
            }
        }
        catch (OperationCanceledException e) when (ct.IsCancellationRequested)
        {
            error = e; // completes the channel as canceled
        }
        catch (Exception e)
        {
            error = e; // surfaces through Completion and the consumer's next read
        }
        finally
        {
            reader.Dispose(); // before completing: once Completion is done, nothing touches the reader
            writer.TryComplete(error);
        }
    }
}
