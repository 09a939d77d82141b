namespace MmapQueues.Tests.Crash.Harness;

/// <summary>A fact that needs a loop filesystem with a power cut (root, loop devices, mkfs); skips with the reason otherwise.</summary>
public sealed class RequiresLoopFilesystemFactAttribute : FactAttribute
{
    public RequiresLoopFilesystemFactAttribute(string fsType = "ext4")
    {
        if (LoopFilesystem.WhyUnavailable(fsType) is { } why) Skip = why;
    }
}

/// <summary>A theory that needs a loop filesystem with a power cut; skips with the reason otherwise.</summary>
public sealed class RequiresLoopFilesystemTheoryAttribute : TheoryAttribute
{
    public RequiresLoopFilesystemTheoryAttribute(string fsType = "ext4")
    {
        if (LoopFilesystem.WhyUnavailable(fsType) is { } why) Skip = why;
    }
}
