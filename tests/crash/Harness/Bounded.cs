using System.Runtime.ExceptionServices;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>Runs a check on its own thread and gives up after a bound, so a hang fails the case instead of the suite.</summary>
internal static class Bounded
{
    public static T Run<T>(Func<T> work, TimeSpan bound, string what)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var t = new Thread(() =>
        {
            try { result = work(); }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
        }) { IsBackground = true, Name = "bounded-check" };
        t.Start();
        if (!t.Join(bound)) throw new CrashCheckException($"{what} took longer than {bound.TotalSeconds} s (a hang)");
        error?.Throw();
        return result;
    }
}
