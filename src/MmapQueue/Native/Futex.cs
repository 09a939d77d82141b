using System.Runtime.InteropServices;

namespace MmapQueues.Native;

/// <summary>
/// Shared futexes (no <c>FUTEX_PRIVATE_FLAG</c>) on a 32-bit word inside a <c>MAP_SHARED</c> file mapping: the
/// kernel keys them by inode and offset, so a wait in one process is woken by a wake in another that maps
/// the same file. Called through <c>syscall(2)</c> (glibc has no futex wrapper).
/// </summary>
internal static unsafe partial class Futex
{
    private const int FUTEX_WAIT = 0, FUTEX_WAKE = 1;

    /// <summary>
    /// <c>SYS_futex</c> of the running architecture, or -1 where it is not known. On 32-bit arm and x86 this is
    /// the call whose timeout is a 32-bit <c>timespec</c>, which <see cref="TimeSpec"/> matches (its fields are native-sized).
    /// </summary>
    private static readonly nint SysFutex = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 202,
        Architecture.X86 => 240,
        Architecture.Arm64 or Architecture.RiscV64 or Architecture.LoongArch64 => 98,
        Architecture.Arm or Architecture.Armv6 => 240,
        Architecture.Ppc64le => 221,
        Architecture.S390x => 238,
        _ => -1,
    };

    /// <summary>True where <see cref="Wait"/> and <see cref="Wake"/> can be called.</summary>
    public static bool Supported => SysFutex >= 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public nint Seconds;
        public nint Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint syscall(nint number, nint address, nint operation, nint value, nint timeout, nint address2, nint value3);

    /// <summary>
    /// Sleeps while <paramref name="word"/> still holds <paramref name="expected"/> (the kernel compares and queues
    /// atomically), at most <paramref name="timeout"/>. Returns 0 when woken, or the errno: <c>EAGAIN</c> (the word
    /// had already changed), <c>ETIMEDOUT</c>, <c>EINTR</c>. The word must stay mapped for the call.
    /// </summary>
    public static int Wait(ref int word, int expected, TimeSpan timeout)
    {
        long ticks = Math.Max(0, timeout.Ticks);
        var ts = new TimeSpec { Seconds = (nint)(ticks / TimeSpan.TicksPerSecond), Nanoseconds = (nint)(ticks % TimeSpan.TicksPerSecond * 100) };
        fixed (int* p = &word)
        {
            nint rc = syscall(SysFutex, (nint)p, FUTEX_WAIT, expected, (nint)(&ts), 0, 0);
            return rc == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Wakes up to <paramref name="count"/> waiters on <paramref name="word"/> in any process; returns how many woke.</summary>
    public static int Wake(ref int word, int count, string pathForErrors)
    {
        fixed (int* p = &word)
        {
            nint rc = syscall(SysFutex, (nint)p, FUTEX_WAKE, count, 0, 0, 0);
            if (rc < 0) throw new IOException($"futex wake on {pathForErrors} failed: {Libc.LastError()}");
            return (int)rc;
        }
    }

    /// <summary>errno of a wait that ran out of time.</summary>
    public const int ETIMEDOUT = 110;
}
