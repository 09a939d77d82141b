namespace MmapQueues;

/// <summary>
/// A reader was asked to start at a sequence the queue does not hold: one retention already deleted
/// (below <see cref="FirstRetained"/>) or one not written yet (above <see cref="NextSequence"/>).
/// Pass <see cref="OutOfRange.Clamp"/> to start at the nearest held sequence instead.
/// </summary>
public sealed class SequenceOutOfRangeException : ArgumentOutOfRangeException
{
    /// <summary>Creates the exception.</summary>
    public SequenceOutOfRangeException(string message, long requested, long firstRetained, long nextSequence)
        : base("sequence", requested, message)
    {
        Requested = requested;
        FirstRetained = firstRetained;
        NextSequence = nextSequence;
    }

    /// <summary>The sequence asked for.</summary>
    public long Requested { get; }

    /// <summary>The oldest sequence the queue held at the time.</summary>
    public long FirstRetained { get; }

    /// <summary>The sequence the next record will get (a reader may start exactly there).</summary>
    public long NextSequence { get; }

    /// <summary>True when the sequence is not written yet; false when retention deleted it.</summary>
    public bool NotYetWritten => Requested > NextSequence;

    internal static SequenceOutOfRangeException For(string directory, long requested, long first, long next) =>
        new(requested > next
                ? $"Sequence {requested} is not written yet in queue {directory}: the next record gets {next} " +
                  $"(the queue holds [{first}, {next})). Seek to at most {next}, or pass OutOfRange.Clamp."
                : $"Sequence {requested} is no longer retained in queue {directory}: retention deleted everything " +
                  $"before {first} (the queue holds [{first}, {next})). Start at FirstSequence, or pass OutOfRange.Clamp.",
            requested, first, next);
}
