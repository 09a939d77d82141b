using MmapQueues.Format;
using MmapQueues.Processes;
using MmapQueues.Storage;
using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>
/// Named consumers: their durable committed positions (the <c>cursors</c> file, through <see cref="CursorStore"/>)
/// and who holds each name right now (one reader or one shipping session in this process, and this process among
/// all: a <see cref="ConsumerOwnership"/> lock in <c>consumers/</c>), so commits to a name never race.
/// </summary>
/// <remarks>
/// <b>Concurrency.</b> The set <c>_open</c> is its own lock, next to last in the queue's order (MmapQueue.cs): it guards the set, and makes
/// <see cref="Remove"/>'s "not open" check and the removal from the cursors file one step. Positions are read
/// lock-free from <see cref="CursorStore.Snapshot"/> (published with a <c>Volatile.Write</c> after the fdatasync).
/// </remarks>
internal sealed class ConsumerRegistry(string directory, CursorStore cursors, ILogger logger, UnixFileMode fileMode)
{
    private readonly Dictionary<string, ConsumerOwnership> _open = new(StringComparer.Ordinal); // each held name's cross-process lock

    /// <summary>Every named consumer with its durable committed position (the next sequence it reads).</summary>
    public IReadOnlyDictionary<string, long> Committed => cursors.Snapshot.Committed;

    /// <summary>
    /// Makes the caller the one holder of <paramref name="name"/> (a reader or a shipping session), in this process and
    /// among processes (the ownership lock is taken under the set's lock: a second claim here fails on the set first).
    /// </summary>
    /// <exception cref="InvalidOperationException">Someone holds it already: here, or another process (the message names it).</exception>
    public void Claim(string name)
    {
        Validate(name);
        lock (_open)
        {
            if (_open.ContainsKey(name))
                throw new InvalidOperationException($"Consumer '{name}' of queue {directory} is already open (a reader or a shipping " +
                                                    "session); dispose its reader or end the session first: one holder per named consumer, so commits cannot race.");
            _open.Add(name, ConsumerOwnership.Claim(directory, name, fileMode));
        }
    }

    /// <summary>Lets go of <paramref name="name"/> (its reader was disposed or its session ended), here and among processes.</summary>
    public void Release(string name)
    {
        ConsumerOwnership? owner;
        lock (_open) _open.Remove(name, out owner);
        owner?.Dispose();
    }

    /// <summary>
    /// The queue closed: every name's cross-process ownership is let go (its readers cannot commit any more), so
    /// another process may take it over; the in-process set keeps the names until their readers are disposed.
    /// </summary>
    public void ReleaseOwnerships()
    {
        lock (_open)
        {
            foreach (ConsumerOwnership owner in _open.Values) owner.Dispose();
        }
    }

    /// <summary>Registers <paramref name="name"/> durably at <paramref name="at"/> unless it is known; returns its committed position.</summary>
    public long RegisterIfNew(string name, long at)
    {
        cursors.Refresh(); // another process may have registered or moved it
        if (cursors.Snapshot.Committed.TryGetValue(name, out long committed)) return committed;
        cursors.Commit(name, at);
        return at;
    }

    /// <summary>Makes <paramref name="sequence"/> the durable position of <paramref name="name"/> (fdatasync before it returns).</summary>
    public void Commit(string name, long sequence) => cursors.Commit(name, sequence);

    /// <summary>
    /// Forgets <paramref name="name"/> durably; false if it was not registered. The name's cross-process ownership is
    /// held (claimed without waiting) for the removal, so a process that owns the consumer never sees it vanish.
    /// </summary>
    /// <exception cref="InvalidOperationException">A reader or session holds it, here or in another process (the message names that process).</exception>
    public bool Remove(string name)
    {
        Validate(name);
        lock (_open)
        {
            if (_open.ContainsKey(name))
                throw new InvalidOperationException($"Consumer '{name}' of queue {directory} has an open reader; dispose it before removing the consumer.");
            using ConsumerOwnership owner = ConsumerOwnership.Claim(directory, name, fileMode); // throws naming another process that owns it
            return cursors.Remove(name);
        }
    }

    /// <summary>
    /// At open, before anything appends or retention runs: a commit past <paramref name="nextSequence"/>
    /// counted records a power cut took back (readers see records before they are durable, the cursors file
    /// is synced on its own). The writer reuses those sequences for new records, so such a commit is moved
    /// back to the end, durably; left as it was, the consumer would skip the new records and retention
    /// would delete them as consumed.
    /// </summary>
    public void ClampPastTheEnd(long nextSequence)
    {
        foreach ((string name, long committed) in cursors.Snapshot.Committed)
        {
            if (committed <= nextSequence) continue;
            cursors.Commit(name, nextSequence);
            Log.ConsumerClamped(logger, directory, name, committed, nextSequence,
                "its commit was past the records that survived a crash (they were never durable)");
        }
    }

    private static void Validate(string consumerName) => CursorFile.ValidateName(consumerName, nameof(consumerName));
}
