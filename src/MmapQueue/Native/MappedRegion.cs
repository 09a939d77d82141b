using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Native;

/// <summary>
/// A shared mapping of a whole file, read-write (the writer) or read-only (a reader process). This is the one type in MmapQueue that holds a raw
/// pointer; everyone else sees <see cref="Span{T}"/> views from <see cref="Span"/>.
/// </summary>
/// <remarks>
/// Not thread-safe for <see cref="Dispose"/>: the owner (<see cref="Storage.Segment"/>) guarantees by
/// reference counting that no view is live when it unmaps. Using a view after that is a use-after-unmap
/// (SIGSEGV), which is why views never leave the reader that owns the reference.
/// </remarks>
internal sealed unsafe class MappedRegion : IDisposable
{
    private byte* _base;
    private readonly nuint _length;
    private bool _locked;

    private MappedRegion(byte* address, long length, ulong inode)
    {
        _base = address;
        _length = (nuint)length;
        Inode = inode;
    }

    /// <summary>The inode of the file mapped (a recycled segment's mapping is checked against the file it is renamed to).</summary>
    public ulong Inode { get; }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of the open file, shared; writable unless <paramref name="writable"/> is
    /// false (a reader process: its file is opened read-only, and a store into the mapping would fault).
    /// </summary>
    public static MappedRegion Map(SafeFileHandle file, long length, string pathForErrors, bool writable = true)
    {
        int fd = (int)file.DangerousGetHandle();
        ulong inode = Libc.InodeOf(fd, pathForErrors);
        int protection = writable ? Libc.PROT_READ | Libc.PROT_WRITE : Libc.PROT_READ;
        nint p = Libc.mmap(0, (nuint)length, protection, Libc.MAP_SHARED, fd, 0);
        if (p == -1)
            throw new IOException($"mmap of {pathForErrors} ({length} bytes) failed: {Libc.LastError()}");
        return new MappedRegion((byte*)p, length, inode);
    }

    public long Length => (long)_length;

    /// <summary>The whole mapping. Valid until <see cref="Dispose"/>.</summary>
    public Span<byte> Span
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => new(_base, (int)_length);
    }

    /// <summary>True when <paramref name="view"/> lies inside this mapping (tests prove reads are zero-copy).</summary>
    public bool Contains(ReadOnlySpan<byte> view)
    {
        fixed (byte* p = view)
            return p >= _base && p + view.Length <= _base + _length;
    }

    /// <summary>Writes back [offset, offset+length) and waits for the device (<c>msync(MS_SYNC)</c>).</summary>
    public void Flush(long offset, long length, string pathForErrors)
    {
        long start = offset & ~(long)(Environment.SystemPageSize - 1);
        long end = Math.Min((long)_length, offset + length);
        if (end <= start) return;
        if (Libc.msync((nint)(_base + start), (nuint)(end - start), Libc.MS_SYNC) != 0)
            throw new IOException($"msync of {pathForErrors} [{start}, {end}) failed: {Libc.LastError()}");
    }

    /// <summary>
    /// Faults [offset, offset+length) in for writing with <c>MADV_POPULATE_WRITE</c>, so the appending
    /// thread takes no page fault there (docs/MEASUREMENTS.md: MAP_POPULATE, mlock and MADV_WILLNEED only read-fault a
    /// shared mapping). It changes no byte, so it may run while the writer appends to the same mapping.
    /// Returns false on kernels without it (before 5.14); then use <see cref="TouchPages"/> before anyone writes.
    /// </summary>
    public bool TryPopulateWrite(long offset, long length)
    {
        (long start, long end) = PageRange(offset, length);
        if (end <= start) return true;
        return Libc.madvise((nint)(_base + start), (nuint)(end - start), Libc.MADV_POPULATE_WRITE) == 0;
    }

    /// <summary>
    /// The fallback preheat: one store per page of the value already there, then MADV_WILLNEED. Only on a
    /// range nobody writes concurrently: a racing store from the writer could be undone.
    /// </summary>
    public void TouchPages(long offset, long length)
    {
        (long start, long end) = PageRange(offset, length);
        int page = Environment.SystemPageSize;
        for (long o = start; o < end; o += page)
            Volatile.Write(ref _base[o], _base[o]); // a write fault per page; the value is unchanged
        if (end > start) Libc.madvise((nint)(_base + start), (nuint)(end - start), Libc.MADV_WILLNEED);
    }

    /// <summary>
    /// Zeroes [offset, offset+length) with stores into the mapping (a recycled segment's cleaning): the pages
    /// stay cached, mapped and dirty, so the writer that comes next takes no page fault on them. The caller
    /// makes sure nobody else reads or writes the range meanwhile.
    /// </summary>
    public void Clear(long offset, long length)
    {
        long end = Math.Min((long)_length, offset + length);
        if (end > offset) new Span<byte>(_base + offset, checked((int)(end - offset))).Clear();
    }

    /// <summary>
    /// Asks for transparent huge pages on the mapping (<c>MADV_HUGEPAGE</c>) before its first touch; returns
    /// false where the kernel or filesystem refuses. Measured, not used by default (docs/DECISIONS.md).
    /// </summary>
    public bool TryAdviseHugePages() => Libc.madvise((nint)_base, _length, Libc.MADV_HUGEPAGE) == 0;

    private (long Start, long End) PageRange(long offset, long length) =>
        (offset & ~(long)(Environment.SystemPageSize - 1), Math.Min((long)_length, offset + length));

    /// <summary>Pins the mapping in RAM (<c>mlock</c>); undone by <see cref="Dispose"/>.</summary>
    public void Lock(string pathForErrors)
    {
        if (Libc.mlock((nint)_base, _length) != 0)
            throw new IOException($"mlock of {pathForErrors} ({_length} bytes) failed: {Libc.LastError()}; " +
                                  "raise RLIMIT_MEMLOCK or turn LockInMemory off");
        _locked = true;
    }

    /// <summary>
    /// Lets go of the file now but keeps the addresses readable: the range is replaced, in place, by private
    /// anonymous zero pages (read-only), unmapped by <see cref="Dispose"/> later. For a page that a thread may still
    /// load from after its owner closed (the writer's notify page: a producer between its publish and its load of
    /// the waiter count); such a load then reads zero instead of faulting.
    /// </summary>
    public void DetachFromFile(string pathForErrors)
    {
        if (_base == null) return;
        if (_locked) Libc.munlock((nint)_base, _length);
        _locked = false;
        nint p = Libc.mmap((nint)_base, _length, Libc.PROT_READ, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_FIXED, -1, 0);
        if (p != (nint)_base) throw new IOException($"mmap over {pathForErrors}'s mapping failed: {Libc.LastError()}");
    }

    public void Dispose()
    {
        if (_base == null) return;
        if (_locked) Libc.munlock((nint)_base, _length);
        Libc.munmap((nint)_base, _length);
        _base = null;
    }
}
