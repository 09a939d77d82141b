using MmapQueues.Format;
using MmapQueues.Native;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Storage;

/// <summary>Creating, activating and validating segment files.</summary>
internal static class SegmentFiles
{
    /// <summary>
    /// Experiment switch (benchmarks only): <c>MADV_HUGEPAGE</c> on each new spare's mapping before its first
    /// touch. Off: measured in benchmarks/RESULTS.md (case 9) and docs/DECISIONS.md.
    /// </summary>
    internal static bool AdviseHugePages { get; set; }

    /// <summary>
    /// Creates the spare segment, a temporary file <c>next.seg.{random}.tmp</c> created exclusively with
    /// <paramref name="fileMode"/>: real blocks reserved with <c>fallocate</c> (a full disk
    /// fails here with an <see cref="IOException"/>, never later as a SIGBUS on a page fault) and mapped;
    /// <see cref="SegmentHeater"/> preheats it. It gets its header and final name only when it becomes
    /// active (<see cref="Activate"/>), because only then is its base sequence known.
    /// </summary>
    public static Segment CreateSpare(string directory, long size, UnixFileMode fileMode)
    {
        var (created, path) = QueueFiles.CreateTemporary(Path.Combine(directory, SegmentNames.SpareStem), fileMode);
        MappedRegion map;
        using (SafeFileHandle handle = created)
        {
            if (Libc.fallocate((int)handle.DangerousGetHandle(), 0, 0, size) != 0)
            {
                int errno = Libc.LastErrno;
                string why = Libc.LastError();
                handle.Dispose();
                QueueFiles.Delete(path);
                if (errno == Libc.ENOSPC)
                    throw new IOException($"Cannot create segment {path}: the disk is full. Needed {size} bytes, " +
                                          $"{FreeBytes(directory)} bytes free. Records appended so far are kept; free space and append again.");
                throw new IOException($"fallocate of segment {path} ({size} bytes) failed: {why}");
            }
            map = MappedRegion.Map(handle, size, path);
        }
        if (AdviseHugePages) map.TryAdviseHugePages();
        var segment = new Segment(path, baseSequence: -1, size);
        segment.AdoptMapping(map);
        return segment;
    }

    /// <summary>
    /// The first step of making a segment retention freed (<see cref="Segment.TryRetireForRecycling"/>) the next
    /// spare, on retention's thread so that its name is gone when the pass returns, as a deletion's is: renamed to
    /// a temporary name <c>next.seg.{random}.tmp</c> and the directory fsynced, before anything in the file
    /// changes, so that after a power cut its old name never comes back carrying a new header (opening deletes
    /// temporary files; retention's floor, durable before this, already covers the old name). Returns the new path.
    /// </summary>
    public static string RenameForRecycling(string path, string directory)
    {
        string tmp = QueueFiles.RenameToTemporary(path, Path.Combine(directory, SegmentNames.SpareStem));
        try
        {
            QueueFiles.FsyncDirectory(directory);
        }
        catch
        {
            QueueFiles.Delete(tmp);
            throw;
        }
        return tmp;
    }

    /// <summary>
    /// The second step, on the allocator's background thread: maps the renamed file <paramref name="tmp"/> with
    /// the mapping <paramref name="parked"/> kept since the segment was written, when there is one and the file is
    /// still its inode, or else maps it again (its pages are still in the page cache: no read and no zero-fill).
    /// <see cref="Clean"/> then zeroes it in memory. <see cref="Segment.TailZeroOnDisk"/> is false.
    /// </summary>
    public static Segment OpenRecycled(string tmp, long size, MappedRegion? parked)
    {
        MappedRegion map;
        try
        {
            using SafeFileHandle handle = QueueFiles.OpenExisting(tmp, write: true);
            long length = RandomAccess.GetLength(handle);
            if (length != size)
                throw QueueCorruptedException.At(tmp, 0, $"file length {size} (the queue's segment size)", $"{length}");
            if (parked is not null && parked.Inode == Libc.InodeOf((int)handle.DangerousGetHandle(), tmp)) map = parked;
            else
            {
                parked?.Dispose();
                parked = null;
                map = MappedRegion.Map(handle, size, tmp);
            }
        }
        catch
        {
            parked?.Dispose();
            QueueFiles.Delete(tmp);
            throw;
        }
        var segment = new Segment(tmp, baseSequence: -1, size) { TailZeroOnDisk = false };
        segment.AdoptMapping(map);
        return segment;
    }

    /// <summary>
    /// Zeroes a recycled spare in memory (as Aeron cleans a used term), 2 MiB at a time, faulting the cached
    /// pages in for writing first (<c>MADV_POPULATE_WRITE</c>), so the writer later finds them mapped, dirty and
    /// zero. Runs before activation, so no reader, the flusher or export can see a previous lap's frame. The
    /// header goes first, with a full fence after it: a tool of another process still reading the file under its
    /// old name (the inspector, by <c>pread</c>) that meets a zeroed frame finds the header gone too, and reports
    /// the segment recycled rather than the queue corrupt. Returns false when <paramref name="stop"/> ended it early.
    /// </summary>
    public static bool Clean(Segment spare, Func<bool> stop)
    {
        const long Chunk = 2 << 20;
        spare.Region.Clear(0, SegmentLayout.HeaderSize);
        Interlocked.MemoryBarrier(); // the header's zeros become visible before any frame's (pairs with QueueInspector's header re-read)
        for (long offset = SegmentLayout.HeaderSize; offset < spare.Size; offset += Chunk)
        {
            if (stop()) return false;
            long length = Math.Min(Chunk, spare.Size - offset);
            spare.Region.TryPopulateWrite(offset, length); // an optimisation only: the stores below fault anyway
            spare.Region.Clear(offset, length);
        }
        return true;
    }

    /// <summary>
    /// Makes the rest of a recycled segment zero on disk, from the page after <paramref name="end"/> (the bytes
    /// between <paramref name="end"/> and that page reached the disk with the record before them, as zeros):
    /// <c>fallocate(FALLOC_FL_ZERO_RANGE)</c> and fsync (metadata only), or, where the filesystem lacks it, an
    /// msync of that range (the zeros are in memory). Sets <see cref="Segment.TailZeroOnDisk"/>. For close:
    /// zeroing a range drops its cached pages.
    /// </summary>
    public static void ZeroTailOnDisk(Segment segment, long end)
    {
        long from = (end + SegmentLayout.PageSize - 1) & ~(long)(SegmentLayout.PageSize - 1);
        if (from < segment.Size)
        {
            using SafeFileHandle handle = QueueFiles.OpenExisting(segment.Path, write: true);
            int fd = (int)handle.DangerousGetHandle();
            if (Libc.fallocate(fd, Libc.FALLOC_FL_ZERO_RANGE, from, segment.Size - from) == 0)
            {
                if (Libc.fsync(fd) != 0) throw new IOException($"fsync of {segment.Path} failed: {Libc.LastError()}");
            }
            else if (Libc.LastErrno is Libc.EOPNOTSUPP or Libc.ENOSYS)
                segment.Region.Flush(from, segment.Size - from, segment.Path);
            else
                throw new IOException($"fallocate(FALLOC_FL_ZERO_RANGE) of {segment.Path} [{from}, {segment.Size}) failed: {Libc.LastError()}");
        }
        segment.TailZeroOnDisk = true;
    }

    /// <summary>
    /// Turns the spare into the segment that starts at <paramref name="baseSequence"/>: header written and
    /// made durable first, then the rename, so a file carrying a segment name always has a valid header.
    /// The caller fsyncs the directory before it reports anything in this segment durable.
    /// </summary>
    public static void Activate(Segment spare, string directory, long baseSequence, Guid queueId)
    {
        var header = SegmentHeader.Create(spare.Size, baseSequence, queueId);
        header.Write(spare.Bytes);
        spare.Region.Flush(0, SegmentLayout.HeaderSize, spare.Path);
        string final = SegmentNames.For(directory, baseSequence);
        QueueFiles.Rename(spare.Path, final, replace: false);
        spare.Rename(final, baseSequence);
    }

    /// <summary>Checks an existing segment's size and header; errors name the file, offset, expected and found.</summary>
    public static SegmentHeader Validate(string path, long expectedBase, long expectedSize, Guid queueId)
    {
        using SafeFileHandle handle = QueueFiles.OpenExisting(path, write: false);
        long length = RandomAccess.GetLength(handle);
        if (length != expectedSize)
            throw QueueCorruptedException.At(path, 0, $"file length {expectedSize} (the queue's segment size)", $"{length}");
        Span<byte> bytes = stackalloc byte[SegmentLayout.HeaderSize];
        int read = RandomAccess.Read(handle, bytes, 0);
        if (read != bytes.Length)
            throw QueueCorruptedException.At(path, read, $"{bytes.Length} header bytes", $"{read}");
        var h = SegmentHeader.Read(bytes);
        if (h.Check(expectedBase, expectedSize, queueId) is { } p)
            throw QueueCorruptedException.At(path, p.Offset, p.Expected, p.Found);
        return h;
    }

    private static long FreeBytes(string directory)
    {
        try
        {
            return new DriveInfo(Path.GetFullPath(directory)).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return -1; // only used to enrich the disk-full message
        }
    }
}
