using System.Diagnostics;
using MmapQueues.Storage;

namespace MmapQueues;

/// <summary>
/// The queue's segments in sequence order, oldest first: looked up lock-free, grown by the roll at the end,
/// shrunk by retention at the front. Also the signal a producer blocked on a full queue waits for.
/// </summary>
/// <remarks>
/// <para><b>Concurrency.</b> One lock, <c>_lock</c> (a leaf: nothing else is taken while it is held), guards
/// the two writers of <c>_segments</c> (<see cref="Add"/>, <see cref="RemovePrefix"/>) and the replacement of
/// <c>_spaceFreed</c>. <c>_segments</c> is copy-on-write: each writer builds a new array and publishes it with
/// a <c>Volatile.Write</c>, which pairs with the <c>Volatile.Read</c> in <see cref="Snapshot"/>, so a reader
/// always sees a fully built array and never takes the lock. A snapshot can be stale: it may still list a
/// segment retention just deleted (its <see cref="Segment.TryAcquire"/> then fails and the caller looks again)
/// or miss one the roll just added (the caller sees the old end and waits or retries).</para>
/// <para>The list is never empty: it is created with at least one segment and retention never removes the last.</para>
/// </remarks>
internal sealed class SegmentList
{
    private readonly object _lock = new();
    private Segment[] _segments;
    private TaskCompletionSource _spaceFreed = NewSignal(); // replaced under _lock by RemovePrefix

    public SegmentList(Segment[] segments)
    {
        if (segments.Length == 0) throw new ArgumentException("A queue holds at least one segment; the list was empty.", nameof(segments));
        _segments = segments;
    }

    /// <summary>The segments now, oldest first (an immutable array; see the remarks for how stale it may be).</summary>
    public Segment[] Snapshot => Volatile.Read(ref _segments); // pairs with the Volatile.Write in Add / RemovePrefix

    /// <summary>How many segments the queue holds.</summary>
    public int Count => Snapshot.Length;

    /// <summary>The oldest segment still held.</summary>
    public Segment First => Snapshot[0];

    /// <summary>The segment holding <paramref name="sequence"/> (the last whose base is at or below it), or null.</summary>
    public Segment? Find(long sequence)
    {
        Segment[] s = Snapshot;
        int lo = 0, hi = s.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (s[mid].BaseSequence <= sequence) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? null : s[found];
    }

    /// <summary>The segment whose base is exactly <paramref name="sequence"/>, or null if not (yet, or any more) listed.</summary>
    public Segment? StartingAt(long sequence)
    {
        Segment? s = Find(sequence);
        return s is not null && s.BaseSequence == sequence ? s : null;
    }

    /// <summary>The segment listed right after <paramref name="segment"/>, or null when it is the last (or no longer listed).</summary>
    public Segment? After(Segment segment)
    {
        Segment[] s = Snapshot;
        int i = Array.IndexOf(s, segment);
        return i >= 0 && i + 1 < s.Length ? s[i + 1] : null;
    }

    /// <summary>Lists <paramref name="segment"/> at the end (the roll, after naming it for the next sequence).</summary>
    public void Add(Segment segment)
    {
        lock (_lock)
        {
            Debug.Assert(segment.BaseSequence >= _segments[^1].BaseSequence, "segments are listed in sequence order");
            var grown = new Segment[_segments.Length + 1];
            _segments.CopyTo(grown, 0);
            grown[^1] = segment;
            Volatile.Write(ref _segments, grown); // pairs with the Volatile.Read in Snapshot
        }
    }

    /// <summary>
    /// Takes the first <paramref name="n"/> segments (already deleted) off the list, deletes their index side
    /// files (unless <paramref name="deleteIndexes"/> is false: a read-only queue forgets segments the writer
    /// removed, and never deletes a file), then completes <see cref="SpaceFreed"/> so producers blocked on a full queue look again.
    /// </summary>
    /// <returns>The side files it could not delete, with why (the caller logs them; the next open removes an
    /// index file whose segment is gone): a failure there never keeps a freed segment listed.</returns>
    public List<(string Path, string Reason)> RemovePrefix(int n, bool deleteIndexes = true)
    {
        var failed = new List<(string, string)>();
        if (n == 0) return failed;
        TaskCompletionSource freed;
        Segment[] removed;
        lock (_lock)
        {
            if (n >= _segments.Length)
                throw new InvalidOperationException($"Retention may remove at most {_segments.Length - 1} of {_segments.Length} segments (never the last); asked for {n}.");
            removed = _segments[..n];
            Volatile.Write(ref _segments, _segments[n..]); // pairs with the Volatile.Read in Snapshot
            freed = _spaceFreed;
            _spaceFreed = NewSignal();
        }
        freed.TrySetResult();
        if (!deleteIndexes) return failed;
        foreach (Segment s in removed)
        {
            try
            {
                QueueFiles.Delete(s.IndexPath);
            }
            catch (IOException e)
            {
                failed.Add((s.IndexPath, e.Message));
            }
        }
        return failed;
    }

    /// <summary>
    /// Completes the next time <see cref="RemovePrefix"/> frees a segment (or <see cref="WakeSpaceWaiters"/> runs).
    /// Take it <i>before</i> checking for room: a removal after the check then still completes it.
    /// </summary>
    public Task SpaceFreed { get { lock (_lock) return _spaceFreed.Task; } }

    /// <summary>Wakes every producer waiting on <see cref="SpaceFreed"/> (on dispose: they see it and throw).</summary>
    public void WakeSpaceWaiters()
    {
        lock (_lock) _spaceFreed.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
