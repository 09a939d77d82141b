using System.Runtime.InteropServices;

namespace MmapQueues.Benchmarks.Native;

/// <summary>The libc calls the reference cases need (O_DIRECT writes, pwrite + fdatasync, fallocate).</summary>
internal static partial class Posix
{
    public const int O_WRONLY = 0x1, O_RDWR = 0x2, O_CREAT = 0x40, O_TRUNC = 0x200, O_DIRECT = 0x4000, O_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pwrite(int fd, nint buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long len);

    public static string LastError()
    {
        int errno = Marshal.GetLastPInvokeError();
        return $"errno {errno}: {Marshal.GetPInvokeErrorMessage(errno)}";
    }

    public static int Check(int rc, string what) =>
        rc < 0 ? throw new IOException($"{what} failed: {LastError()}") : rc;

    public static void PwriteAll(int fd, nint buffer, nuint count, long offset, string what)
    {
        while (count > 0)
        {
            nint n = pwrite(fd, buffer, count, offset);
            if (n < 0) throw new IOException($"pwrite {what} at {offset} ({count} bytes) failed: {LastError()}");
            buffer += n;
            count -= (nuint)n;
            offset += n;
        }
    }
}

/// <summary>A page-aligned native buffer, touched on creation (so it is "preheated": no page faults later).</summary>
internal sealed unsafe class AlignedBuffer : IDisposable
{
    private byte* _p;
    public AlignedBuffer(long length, int alignment = 4096)
    {
        Length = length;
        _p = (byte*)NativeMemory.AlignedAlloc((nuint)length, (nuint)alignment);
        new Span<byte>(_p, checked((int)length)).Fill(0x5A);
    }

    public long Length { get; }
    public nint Address => (nint)_p;
    public Span<byte> Span => new(_p, (int)Length);

    public void Dispose()
    {
        if (_p == null) return;
        NativeMemory.AlignedFree(_p);
        _p = null;
    }
}
