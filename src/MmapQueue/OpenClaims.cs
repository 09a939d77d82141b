namespace MmapQueues;

/// <summary>
/// The claims of the callback API (<c>Enqueue&lt;TState&gt;</c>) whose callback is running: when each was
/// stored and for which sequence. Read by a flush that waits at a claim (its timeout message says how long
/// the claim has been open), by Dispose, and by the <c>mmapq.claim.oldest_age</c> gauge.
/// </summary>
/// <remarks>
/// <para>A plain <c>Enqueue(span)</c> is not tracked: its claim lasts one copy. The start time is the coarse
/// millisecond clock (<see cref="Environment.TickCount64"/>, 4 ns a read here against 22 ns for
/// <c>Stopwatch.GetTimestamp</c>, measured with a 50 M-read loop): an age is for a gauge and a message, and the
/// timeout itself is measured by the flusher with its own clock. A waiter that finds a claim here not listed
/// reports how long it waited instead.</para>
/// <para>Lock-free: a producer takes a free slot with a compare-and-swap of its start time over 0 (slots one
/// cache line apart, the first tried chosen by thread id, so producers do not share lines) and frees it with a
/// <c>Volatile.Write</c> of 0, which pairs with the <c>Volatile.Read</c> of the readers below. The sequence is
/// stored after the slot is taken, so a reader may pair a new start time with the slot's previous sequence for
/// a moment; it then reports the claim as not listed, never a wrong age for another sequence (sequences are
/// never claimed twice). More open claims than slots: the extra ones go untracked.</para>
/// </remarks>
internal sealed class OpenClaims
{
    private const int Slots = 32;  // a power of two
    private const int Stride = 8;  // longs per slot: [0] start (Environment.TickCount64 ms, 0 = free), [1] sequence
    private readonly long[] _slots = new long[Slots * Stride];

    /// <summary>Lists the claim of <paramref name="sequence"/>; returns the slot for <see cref="Exit"/> (-1 when untracked).</summary>
    public int Enter(long sequence)
    {
        long now = Math.Max(1, Environment.TickCount64);
        int first = Environment.CurrentManagedThreadId;
        for (int k = 0; k < Slots; k++)
        {
            int i = ((first + k) & (Slots - 1)) * Stride;
            if (Volatile.Read(ref _slots[i]) == 0 && Interlocked.CompareExchange(ref _slots[i], now, 0) == 0)
            {
                Volatile.Write(ref _slots[i + 1], sequence);
                return i;
            }
        }
        return -1;
    }

    /// <summary>Unlists a claim (after it was published or aborted).</summary>
    public void Exit(int slot)
    {
        if (slot >= 0) Volatile.Write(ref _slots[slot], 0);
    }

    /// <summary>How long the claim of <paramref name="sequence"/> has been open, or null when it is not listed.</summary>
    public TimeSpan? AgeOf(long sequence)
    {
        for (int i = 0; i < _slots.Length; i += Stride)
        {
            long since = Volatile.Read(ref _slots[i]);
            if (since != 0 && Volatile.Read(ref _slots[i + 1]) == sequence) return Since(since);
        }
        return null;
    }

    /// <summary>The age of the oldest listed claim, or null when none is open.</summary>
    public TimeSpan? OldestAge()
    {
        long oldest = long.MaxValue;
        for (int i = 0; i < _slots.Length; i += Stride)
        {
            long since = Volatile.Read(ref _slots[i]);
            if (since != 0 && since < oldest) oldest = since;
        }
        return oldest == long.MaxValue ? null : Since(oldest);
    }

    private static TimeSpan Since(long startMilliseconds) => TimeSpan.FromMilliseconds(Math.Max(0, Environment.TickCount64 - startMilliseconds));
}
