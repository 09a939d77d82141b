using System.Diagnostics;

namespace MmapQueues.Tests;

/// <summary>A fact that makes a directory append-only with <c>chattr +a</c> (root, ext4 or XFS); skips with the reason otherwise.</summary>
public sealed class RequiresChattrFactAttribute : FactAttribute
{
    public RequiresChattrFactAttribute()
    {
        if (Environment.UserName != "root") Skip = "needs root: chattr +a on the queue directory makes one rename fail";
        else if (!RecycleFailureTests.TryChattr("+a", Path.GetTempPath(), probe: true)) Skip = $"chattr +a is not supported on {Path.GetTempPath()}'s filesystem";
    }
}

public class RecycleFailureTests
{
    /// <summary>Runs chattr; with <paramref name="probe"/>, on a scratch directory it removes again.</summary>
    internal static bool TryChattr(string flag, string path, bool probe = false)
    {
        string target = probe ? Directory.CreateTempSubdirectory("mmapq-chattr-probe").FullName : path;
        try
        {
            using var p = Process.Start(new ProcessStartInfo("chattr", [flag, target]) { RedirectStandardError = true })!;
            p.WaitForExit();
            bool ok = p.ExitCode == 0;
            if (ok && probe) Process.Start("chattr", ["-a", target])!.WaitForExit();
            return ok;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no chattr binary
        }
        finally
        {
            if (probe) Directory.Delete(target);
        }
    }

    [RequiresChattrFact]
    public void AFailedRecycleRenameFreesTheSegmentAnywayAndRetentionGoesOn()
    {
        using var dir = new TempDir();
        using var logs = new CapturingLoggerFactory();
        using var q = new MmapQueue(dir.Path, TestOptions.Small(), logs);
        using var r = q.OpenReader("c");
        for (int i = 0; i < 400; i++) q.Enqueue(new byte[1000]);
        while (r.TryRead(out _)) { }
        q.WaitForBackgroundWork();
        Assert.True(TryChattr("+a", dir.Path), "chattr +a failed");
        try
        {
            r.Commit(); // retention runs on the committing thread: its rename (and the fallback unlink) fail with EPERM
        }
        finally
        {
            Assert.True(TryChattr("-a", dir.Path), "chattr -a failed");
        }
        Assert.NotEmpty(logs.WithId(1015));

        for (int i = 0; i < 400; i++) q.Enqueue(new byte[1000]);
        while (r.TryRead(out _)) { }
        r.Commit();
        q.WaitForBackgroundWork();
        Assert.True(q.Segments.Length <= 2, $"retention stopped after the failed rename: {q.Segments.Length} segments, first sequence {q.FirstSequence}");
        Assert.Equal(q.NextSequence, r.NextSequence);
    }
}
