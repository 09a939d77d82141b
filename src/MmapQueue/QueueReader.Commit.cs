namespace MmapQueues;

public sealed partial class QueueReader
{
    /// <summary>
    /// Makes <paramref name="nextSequence"/> this named consumer's durable position: after a crash or reopen
    /// it resumes there. For a consumer that processes records on another thread than the one that reads
    /// them, such as through <see cref="QueueReaderChannelExtensions.AsChannelReader"/>, which reads ahead:
    /// commit <see cref="QueueRecord.Sequence"/> + 1 of the last record processed, not the reader's own
    /// position (<see cref="Commit"/> would count the read-ahead records as consumed). Safe to call from
    /// any thread while the reader reads; the cost and retention effect are those of <see cref="Commit"/>.
    /// </summary>
    /// <param name="nextSequence">The first sequence not yet processed, from 0 to <see cref="MmapQueue.NextSequence"/>.</param>
    /// <exception cref="InvalidOperationException">This reader is anonymous (opened by sequence).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="nextSequence"/> is negative or past the end of the queue.</exception>
    /// <exception cref="ObjectDisposedException">The reader was disposed (the channel adapter disposes it when it stops).</exception>
    public void CommitAt(long nextSequence)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_name is null)
            throw new InvalidOperationException("Only a named consumer can commit: open it with OpenReader(name).");
        long end = _queue.NextSequence;
        if (nextSequence < 0 || nextSequence > end)
            throw new ArgumentOutOfRangeException(nameof(nextSequence), nextSequence,
                $"Consumer '{_name}' can commit a position from 0 to the end of the queue, {end}; found {nextSequence}.");
        _queue.CommitConsumer(_name, nextSequence);
    }
}
