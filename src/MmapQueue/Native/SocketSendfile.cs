using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Native;

/// <summary>
/// Ranged <c>sendfile(2)</c> from a file descriptor to a socket: the bytes go from the page cache to the
/// socket without passing through user space (docs/MACHINE-FACTS.md: Socket.SendFile has no offset/count, and
/// SendPacketsAsync leaves the socket non-blocking for good, so the syscall is called directly).
/// </summary>
internal static class SocketSendfile
{
    /// <summary>
    /// Sends the bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>) of
    /// <paramref name="file"/>. Both handles are ref-counted (<c>DangerousAddRef</c>) for the duration so a
    /// concurrent <c>Dispose</c> cannot close the raw descriptors and let the kernel reuse them under us.
    /// A socket that .NET has made non-blocking (it does after any async operation) gets <c>EAGAIN</c>: then
    /// we wait for it to be writable with <c>poll</c> and go on.
    /// </summary>
    /// <exception cref="IOException">sendfile failed (for example EPIPE: the peer closed); the message names the file and offset.</exception>
    public static void Send(Socket socket, SafeFileHandle file, long offset, long count, string pathForErrors)
    {
        SafeSocketHandle sock = socket.SafeHandle;
        bool sockAdded = false, fileAdded = false;
        try
        {
            sock.DangerousAddRef(ref sockAdded);
            file.DangerousAddRef(ref fileAdded);
            int outFd = (int)sock.DangerousGetHandle(), inFd = (int)file.DangerousGetHandle();
            long position = offset, end = offset + count;
            while (position < end)
            {
                // The kernel advances `position` by what it sent; the file's own offset is left alone.
                nint sent = Libc.sendfile64(outFd, inFd, ref position, (nuint)(end - position));
                if (sent > 0) continue;
                if (sent == 0)
                    throw new IOException($"sendfile from {pathForErrors} sent 0 bytes at offset {position}: expected {end - position} more bytes (is the file shorter?).");
                int errno = Libc.LastErrno;
                if (errno == Libc.EINTR) continue;
                if (errno == Libc.EAGAIN)
                {
                    socket.Poll(-1, SelectMode.SelectWrite); // the socket's buffer is full: wait until it drains
                    continue;
                }
                throw new IOException($"sendfile from {pathForErrors} at offset {position} ({end - position} bytes left) to the socket failed: {Libc.LastError()}");
            }
        }
        finally
        {
            if (fileAdded) file.DangerousRelease();
            if (sockAdded) sock.DangerousRelease();
        }
    }
}
