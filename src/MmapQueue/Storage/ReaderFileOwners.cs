using MmapQueues.Native;

namespace MmapQueues.Storage;

/// <summary>
/// What the files and directories a reader process creates in a queue directory (its lease and <c>readers/</c>,
/// <c>readers/pass.lock</c>, <c>consumers/</c> and its locks, <c>cursors.lock</c>, a grown <c>cursors</c>, a missing
/// <c>notify</c>) look like: the mode of the queue's <c>queue.meta</c>, not the reader's own options, and, when the
/// reader runs as root, the owner and group of <c>queue.meta</c> (the writer's user). Otherwise a
/// <c>sudo mmapq tail -f</c> would leave root-owned 0600 leases and locks the writer can neither open nor lock.
/// </summary>
/// <remarks>
/// A read-only open registers its queue directory here (only when the process runs as root: nobody else may
/// give a file away); <see cref="QueueFiles"/> hands every file and directory it creates under a registered
/// directory to that owner (<c>fchown</c> on the new descriptor, before anyone else can open it by its final
/// name). The table is guarded by itself; entries are counted, one per open read-only queue.
/// </remarks>
internal static class ReaderFileOwners
{
    private static readonly Dictionary<string, (uint Uid, uint Gid, int Count)> s_owners = new(StringComparer.Ordinal);

    /// <summary>The mode and owner of <c>queue.meta</c> in <paramref name="queueDirectory"/> (read through an open descriptor).</summary>
    public static (UnixFileMode Mode, uint Uid, uint Gid) OfMeta(string queueDirectory)
    {
        string path = Path.Combine(queueDirectory, SegmentNames.MetaName);
        using var meta = QueueFiles.OpenExisting(path, write: false);
        (uint uid, uint gid, int mode) = Libc.OwnerOf((int)meta.DangerousGetHandle(), path);
        // Hostile bits (set-id, sticky, execute, group or other write) are never copied: only what FilePermissions may hold.
        return ((UnixFileMode)mode & QueueFiles.AllowedFileModes | QueueFiles.DefaultFileMode, uid, gid);
    }

    /// <summary>From now until disposed, what this process creates under <paramref name="queueDirectory"/> goes to <paramref name="uid"/>:<paramref name="gid"/> (root only; otherwise nothing).</summary>
    public static IDisposable? Register(string queueDirectory, uint uid, uint gid)
    {
        if (Libc.geteuid() != 0) return null;
        string key = Path.TrimEndingDirectorySeparator(queueDirectory);
        lock (s_owners) s_owners[key] = (uid, gid, s_owners.TryGetValue(key, out var e) ? e.Count + 1 : 1);
        return new Registration(key);
    }

    /// <summary>After a create: gives the new file or directory <paramref name="fd"/> at <paramref name="path"/> to its queue's registered owner, if any.</summary>
    public static void Apply(int fd, string path)
    {
        (uint Uid, uint Gid, int Count) owner = default;
        bool found = false;
        lock (s_owners)
        {
            if (s_owners.Count == 0) return;
            foreach (var (dir, o) in s_owners)
                if (path.StartsWith(dir + "/", StringComparison.Ordinal)) { owner = o; found = true; break; }
        }
        if (found && Libc.fchown(fd, owner.Uid, owner.Gid) != 0)
            throw new IOException($"chown of {path} to {owner.Uid}:{owner.Gid} (the owner of the queue's {SegmentNames.MetaName}) failed: {Libc.LastError()}");
    }

    private sealed class Registration(string key) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            lock (s_owners)
            {
                var e = s_owners[key];
                if (e.Count == 1) s_owners.Remove(key);
                else s_owners[key] = e with { Count = e.Count - 1 };
            }
        }
    }
}
