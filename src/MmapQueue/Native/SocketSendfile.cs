using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;

namespace MmapQueues.Native;

/// <summary>
/// Ranged <c>sendfile(2)</c> from a file to a socket: the bytes go from the page cache to the socket
/// without passing through user space. <c>Socket.SendFile</c> has no offset or count, so the synchronous
/// path calls the syscall directly; the asynchronous one uses <c>SendPacketsAsync</c> with a file element,
/// which .NET turns into a ranged sendfile on Linux (and which leaves the socket non-blocking for good:
/// the synchronous path handles EAGAIN).
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

    /// <summary>
    /// As <see cref="Send"/>, asynchronously: one <c>SendPacketsAsync</c> with a file element (a ranged
    /// sendfile in the runtime's socket engine). <paramref name="file"/> must be opened with
    /// <see cref="FileOptions.Asynchronous"/>. Cancellation shuts the socket's sending side down.
    /// </summary>
    public static async Task SendAsync(Socket socket, FileStream file, long offset, int count, string pathForErrors, CancellationToken ct)
    {
        var done = new TaskCompletionSource<SocketAsyncEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var args = new SocketAsyncEventArgs { SendPacketsElements = [new SendPacketsElement(file, offset, count, endOfPacket: false)] };
        args.Completed += (_, a) => done.TrySetResult(a);
        await using (ct.Register(() => ShutdownSending(socket)).ConfigureAwait(false))
        {
            if (!socket.SendPacketsAsync(args)) done.TrySetResult(args);
            await done.Task.ConfigureAwait(false);
        }
        ct.ThrowIfCancellationRequested();
        if (args.SocketError != SocketError.Success)
            throw new IOException($"sendfile from {pathForErrors} at offset {offset} ({count} bytes) to the socket failed: {args.SocketError}");
    }

    /// <summary>Makes a pending send return (on cancellation); a socket already closed or reset has returned already.</summary>
    private static void ShutdownSending(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (ObjectDisposedException)
        {
            // closed by its owner: the pending send has completed with an error
        }
        catch (SocketException)
        {
            // not connected any more (reset by the peer): the pending send has completed with an error
        }
    }
}
