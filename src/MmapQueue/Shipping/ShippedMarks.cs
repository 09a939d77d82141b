using MmapQueues.Storage;

namespace MmapQueues.Shipping;

/// <summary>
/// For each named shipping consumer, the highest sequence the source ever sent under that name, kept
/// durably in the queue directory (file <c>shipped</c>, in the cursors file's format) and raised before
/// the bytes leave. The source trusts only this: it never commits the consumer past it and never accepts
/// a replica claiming more (a replica's word is checked against what was really sent).
/// </summary>
/// <remarks>
/// One store per queue directory, shared by its concurrent sessions (and by a queue reopened while an old
/// session still ends): <see cref="Open"/> counts the users; the last lease closes it. Two stores on one
/// file would each count their own generations and overwrite each other's current slot. Across processes (a reader
/// process ships too), the store is opened shared: each raise takes the cursors file's lock and re-reads the file first.
/// </remarks>
internal static class ShippedMarks
{
    public const string FileName = "shipped";

    private static readonly Dictionary<string, Shared> Stores = new(StringComparer.Ordinal); // by queue directory; guarded by itself

    internal sealed class Shared(CursorStore store)
    {
        public readonly CursorStore Store = store;
        public int Users;
    }

    public static Lease Open(MmapQueue queue)
    {
        lock (Stores)
        {
            if (!Stores.TryGetValue(queue.Path, out Shared? s))
                Stores[queue.Path] = s = new Shared(CursorStore.Open(queue.Path, queue.QueueId, queue.Options.FilePermissions, FileName, shared: true,
                    lockWait: queue.IsReadOnly ? null : Processes.FileLocks.WriterWait)); // the writer never waits without bound for a reader's lock
            else
                s.Store.Refresh(); // reused: what another process raised since
            s.Users++;
            return new Lease(queue, s);
        }
    }

    public sealed class Lease(MmapQueue queue, Shared shared) : IDisposable
    {
        private bool _disposed;

        /// <summary>
        /// The highest sequence (exclusive) ever sent to <paramref name="consumer"/>. With no mark yet (a
        /// queue shipped before marks were kept), the consumer's committed position, which only ever moved
        /// to acknowledged, so sent, records.
        /// </summary>
        public long Get(string consumer) =>
            shared.Store.Snapshot.Committed.TryGetValue(consumer, out long mark) ? mark
            : queue.Consumers.TryGetValue(consumer, out long committed) ? committed : queue.FirstSequence;

        /// <summary>Raises the mark durably to <paramref name="sentBelow"/> (never lowers it); call before sending those records.</summary>
        public void Raise(string consumer, long sentBelow)
        {
            if (Get(consumer) >= sentBelow && shared.Store.Snapshot.Committed.ContainsKey(consumer)) return;
            shared.Store.CommitAtLeast(consumer, Math.Max(sentBelow, Get(consumer))); // the max against the file re-read under its lock
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            lock (Stores)
            {
                if (--shared.Users > 0) return;
                Stores.Remove(queue.Path);
                shared.Store.Dispose();
            }
        }
    }
}
