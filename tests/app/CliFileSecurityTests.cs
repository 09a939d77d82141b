using static MmapQueues.Tests.App.CliTests;

namespace MmapQueues.Tests.App;

/// <summary>mmapq prints no file's bytes raw: a planted link is not read, control characters are escaped.</summary>
public class CliFileSecurityTests
{
    [Fact]
    public async Task InfoOnAQueueWhoseLockIsALinkReportsItAndNeverPrintsTheTarget()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q"), victim = dir.Sub("secret.txt");
        using (var queue = new MmapQueue(q)) queue.Enqueue([1]);
        File.WriteAllText(victim, "TOP-SECRET-CONTENT");
        File.Delete(Path.Combine(q, "lock"));
        File.CreateSymbolicLink(Path.Combine(q, "lock"), victim);

        Run r = await Mmapq(["info", q]);
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain("TOP-SECRET", r.Output + r.Data + r.Error);
        Assert.Contains("symbolic link", r.Output);
    }

    [Fact]
    public async Task ControlCharactersInALockFileAreEscapedBeforeTheyReachTheTerminal()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q");
        using (var queue = new MmapQueue(q)) queue.Enqueue([1]);
        File.WriteAllText(Path.Combine(q, "lock"), "\u001b]0;owned\u0007\u001b[2J\u202e");

        Run r = await Mmapq(["info", q]);
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain('\u001b', r.Output);
        Assert.DoesNotContain('\u202e', r.Output);
        Assert.Contains(@"\u001b]0;owned\u0007\u001b[2J\u202e", r.Output);
    }

    [Fact]
    public async Task AnErrorQuotingAPathWithAnEscapeSequencePrintsItEscaped()
    {
        using var dir = new TempDir();
        string q = dir.Sub("q\u001b[31m");

        Run r = await Mmapq(["info", q]);
        Assert.Equal(2, r.ExitCode);
        Assert.DoesNotContain('\u001b', r.Error);
        Assert.Contains(@"q\u001b[31m", r.Error);
    }
}
