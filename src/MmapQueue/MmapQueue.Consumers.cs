using MmapQueues.Processes;
using MmapQueues.Storage;

namespace MmapQueues;

public sealed partial class MmapQueue
{
    private readonly CursorStore _cursors; // opened in the constructor, before recovery (it holds the retention floor)
    private readonly ConsumerRegistry _consumers;

    /// <summary>
    /// Opens a reader whose first <see cref="QueueReader.TryRead"/> returns <paramref name="fromSequence"/>,
    /// or the nearest held sequence when <paramref name="outOfRange"/> is <see cref="OutOfRange.Clamp"/>.
    /// Finding the position costs a binary search over segments and a sparse-index lookup, never a scan of the queue.
    /// </summary>
    /// <exception cref="SequenceOutOfRangeException">The sequence was deleted by retention (below <see cref="FirstSequence"/>) or is not written yet (above <see cref="NextSequence"/>).</exception>
    public QueueReader OpenReader(long fromSequence, OutOfRange outOfRange)
    {
        ThrowIfDisposed();
        var reader = new QueueReader(this, name: null);
        reader.Seek(fromSequence, outOfRange);
        return reader;
    }

    /// <summary>
    /// Opens the named consumer <paramref name="consumerName"/>: it resumes at its last committed position
    /// (<see cref="QueueReader.Commit"/>), or, the first time, at <see cref="FirstSequence"/> (and is
    /// registered durably at once, so retention keeps what it has not read yet). Delivery is at-least-once:
    /// records read after the last commit are read again after a crash or reopen. A consumer whose
    /// committed records a limit deleted resumes at <see cref="FirstSequence"/>, with a warning logged.
    /// </summary>
    /// <param name="consumerName">1 to 255 bytes of UTF-8, without lone surrogates; names are compared ordinally.</param>
    /// <exception cref="InvalidOperationException">A reader for this consumer is already open, or another process owns
    /// the name (the message names that process: pid, process name, user).</exception>
    public QueueReader OpenReader(string consumerName)
    {
        ThrowIfDisposed();
        _consumers.Claim(consumerName);
        var reader = new QueueReader(this, consumerName);
        try
        {
            long committed = _consumers.RegisterIfNew(consumerName, FirstSequence);
            long resumed = reader.Seek(committed, OutOfRange.Clamp);
            if (resumed != committed)
            {
                _consumers.Commit(consumerName, resumed); // so retention never trusts a position the consumer did not reach
                Log.ConsumerClamped(_logger, _directory, consumerName, committed, resumed, resumed > committed
                    ? "a retention limit deleted the records in between before it read them"
                    : "its commit was past the records that survived a crash (they were never durable)");
            }
            return reader;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Forgets a named consumer (durably), so retention no longer waits for it. Returns false if no such
    /// consumer was registered.
    /// </summary>
    /// <exception cref="InvalidOperationException">A reader for this consumer is open, or another process owns the name
    /// (the message names that process: pid, process name, user).</exception>
    public bool RemoveConsumer(string consumerName)
    {
        ThrowIfDisposed();
        if (!_consumers.Remove(consumerName)) return false;
        if (!_readOnly) ApplyRetentionAfterDurableChange(); // a reader process leaves retention to the writer's next pass
        return true;
    }

    /// <summary>Every named consumer with its durable committed position (the next sequence it reads); a copy.</summary>
    /// <remarks>Each read re-reads the shared <c>cursors</c> file, so positions committed by other processes (reader processes, or the writer) show.</remarks>
    public IReadOnlyDictionary<string, long> Consumers
    {
        get
        {
            if (!_disposed) _cursors.Refresh();
            return new Dictionary<string, long>(_consumers.Committed, StringComparer.Ordinal);
        }
    }

    internal void CommitConsumer(string name, long sequence)
    {
        ThrowIfDisposed();
        _consumers.Commit(name, sequence);
        if (!_readOnly) ApplyRetentionAfterDurableChange(); // on the consumer's thread: it just paid an fdatasync, an unlink is small beside it
    }

    /// <summary>
    /// A retention pass after a commit or removal that is already durable: its failure (a file the writer cannot
    /// open or lock, a hostile file in <c>readers/</c>) must not turn a done commit into an exception. It is logged
    /// as a background pass's failure is (event 1035); the next commit, roll or timer tick tries again.
    /// </summary>
    private void ApplyRetentionAfterDurableChange()
    {
        try
        {
            _retention.Apply();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) // QueueCorruptedException is an IOException
        {
            Log.RetentionFailed(_logger, _directory, e);
        }
    }

    /// <summary>
    /// Claims <paramref name="name"/> for a shipping session (no reader of that name may be open, nor
    /// another session) and registers it at <see cref="FirstSequence"/> if it is new. Release with <see cref="CloseConsumer"/>.
    /// </summary>
    internal void OpenShippingConsumer(string name)
    {
        ThrowIfDisposed();
        _consumers.Claim(name);
        try
        {
            _consumers.RegisterIfNew(name, FirstSequence);
        }
        catch
        {
            CloseConsumer(name);
            throw;
        }
    }

    /// <summary>Commits a shipping consumer to the replica's durable position; never moves it back.</summary>
    internal void CommitShipped(string name, long replicaDurable)
    {
        if (_consumers.Committed.TryGetValue(name, out long committed) && committed >= replicaDurable) return;
        CommitConsumer(name, replicaDurable);
    }

    /// <summary>Releases a named consumer claimed by a reader or a shipping session.</summary>
    internal void CloseConsumer(string name) => _consumers.Release(name);

    /// <summary>
    /// Finds where <paramref name="sequence"/> lives and takes a reference on that segment (the caller owns
    /// it). Returns the segment, the offset and sequence of the indexed record to scan from, and the target.
    /// </summary>
    /// <remarks>On a read-only queue, <paramref name="lease"/> (the reader's) is moved to the target before the segment is mapped.</remarks>
    internal (Segment Segment, int Offset, long Sequence, long Target) Locate(long sequence, OutOfRange outOfRange, ref ReaderLease? lease)
    {
        ThrowIfDisposed();
        if (_readOnly) return LocateReadOnly(sequence, outOfRange, ref lease);
        while (true)
        {
            long first = FirstSequence, next = NextSequence;
            long target = sequence;
            if (sequence < first || sequence > next)
            {
                if (outOfRange != OutOfRange.Clamp) throw SequenceOutOfRangeException.For(_directory, sequence, first, next);
                target = Math.Clamp(sequence, first, next);
            }
            Segment? seg = _segments.Find(target);
            if (seg is null || !seg.TryAcquire()) continue; // retention deleted it between the check and here: look again
            try
            {
                (int record, int offset) = _indexes.Locate(seg, (int)(target - seg.BaseSequence));
                return (seg, offset, seg.BaseSequence + record, target);
            }
            catch
            {
                seg.Release();
                throw;
            }
        }
    }
}
