using System.Runtime.InteropServices;

namespace MmapQueues.Benchmarks.Export;

/// <summary>CPU time of the calling thread (getrusage RUSAGE_THREAD): user + system, in seconds.</summary>
internal static partial class ThreadCpu
{
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSec, UserUsec, SysSec, SysUsec;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NvCsw, NivCsw;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrusage(int who, out RUsage usage);

    private const int RUSAGE_THREAD = 1;

    public static (double User, double Sys) Now()
    {
        if (getrusage(RUSAGE_THREAD, out RUsage u) != 0) throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return (u.UserSec + u.UserUsec / 1e6, u.SysSec + u.SysUsec / 1e6);
    }
}
