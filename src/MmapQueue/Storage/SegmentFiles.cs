using MmapQueues.Format;
using MmapQueues.Native;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Storage;

/// <summary>Creating, activating and validating segment files.</summary>
internal static class SegmentFiles
{
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
        var segment = new Segment(path, baseSequence: -1, size);
        segment.AdoptMapping(map);
        return segment;
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
