using System.Runtime.InteropServices;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>
/// A filesystem on a loop device whose power can be cut. <see cref="PowerCut"/> is a machine losing power:
/// the filesystem stops issuing I/O at once (the shutdown ioctl without a log flush drops the dirty page
/// cache), the image is copied once the device is idle, and the copy is mounted (journal replay = the reboot).
/// </summary>
/// <remarks>
/// <para>Between the kill and the cut nothing may <c>sync</c>, <c>fsfreeze</c> or unmount: each writes the
/// unsynced data back and voids the test. The harness never does; the child is killed, then
/// <see cref="PowerCut"/> shuts the filesystem down before anything else touches it.</para>
/// <para>Independent of what else runs on the machine: each instance has its own image, mount point and
/// loop device under a fresh directory, and looks only at its own device's counters. What it cannot control
/// is global: another program's <c>sync</c>, or the kernel's background write-back once the machine's dirty
/// memory passes <c>vm.dirty_background_ratio</c>, may write this filesystem's unsynced pages before a cut,
/// and a loaded host disk may keep its loop device busy for a while. So the idle wait is bounded by time,
/// not by a count of tries, and no test may demand that a cut loses a given unsynced record (more surviving
/// is always allowed; see docs/MEASUREMENTS.md, "Crash simulation").</para>
/// </remarks>
internal sealed partial class LoopFilesystem : IDisposable
{
    private readonly string _work, _image, _fsType;
    private string? _device;

    public string MountPoint { get; }

    private LoopFilesystem(string fsType, long sizeBytes)
    {
        _fsType = fsType;
        _work = Path.Combine(Path.GetTempPath(), "mmapq-crash", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_work);
        _image = Path.Combine(_work, "fs.img");
        MountPoint = Path.Combine(_work, "mnt");
        Directory.CreateDirectory(MountPoint);
        using (var f = new FileStream(_image, FileMode.CreateNew)) f.SetLength(sizeBytes); // sparse
        if (fsType == "xfs") Shell.Run("mkfs.xfs", "-q", "-f", _image);
        else Shell.Run("mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", _image); // -m 0: no root reserve, so free space is what it says
        AttachAndMount();
    }

    /// <summary>Creates and mounts a fresh filesystem (ext4: 128 MiB by default; xfs needs at least 300 MiB).</summary>
    public static LoopFilesystem Create(string fsType, long sizeBytes = 0) =>
        new(fsType, sizeBytes > 0 ? sizeBytes : fsType == "xfs" ? 512L << 20 : 128L << 20);

    /// <summary>Null when loop filesystems with a power cut work here; otherwise why not (the skip reason).</summary>
    public static string? WhyUnavailable(string fsType) => Probes.GetOrAdd(fsType, Probe);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string?> Probes = new();

    private static string? Probe(string fsType)
    {
        if (!OperatingSystem.IsLinux()) return "power-loss tests need Linux (loop devices, FS shutdown ioctl)";
        if (geteuid() != 0) return "power-loss tests need root (losetup, mount, FS shutdown ioctl); run as root (CI does)";
        if (!File.Exists("/dev/loop-control")) return "no /dev/loop-control: the loop driver is missing or not exposed to this container";
        foreach (string tool in new[] { "losetup", "mount", "umount", "cp", $"mkfs.{fsType}" })
            if (!Shell.OnPath(tool)) return $"{tool} is not installed ({(fsType == "xfs" ? "xfsprogs" : "e2fsprogs / util-linux")})";
        try
        {
            using var fs = Create(fsType);
            File.WriteAllText(Path.Combine(fs.MountPoint, "probe"), "x");
            fs.PowerCut();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot make, mount or cut a loop {fsType} filesystem here: {e.Message}";
        }
    }

    /// <summary>
    /// Power loss: shut the filesystem down without flushing anything, wait until the loop device has no
    /// I/O in flight, copy the image (what the disk held at the cut), drop the dead mount, mount the copy.
    /// </summary>
    public void PowerCut()
    {
        Shutdown(MountPoint);
        string copy = Path.Combine(_work, "crash.img");
        string sys = $"/sys/block/{Path.GetFileName(_device!)}";
        bool copied = false;
        string state = "";
        // Writes already in flight at the cut still complete into the image file; on a host disk that another
        // program keeps busy they can take seconds, so wait by the clock (not by a count of tries).
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!copied && waited.Elapsed < IdleWaitLimit)
        {
            state = IoState(sys);
            if (!state.EndsWith(" 0 0", StringComparison.Ordinal)) { Thread.Sleep(10); continue; }
            Shell.Run("cp", "--sparse=always", _image, copy);
            copied = state == IoState(sys); // nothing completed while cp ran: the copy is one instant
        }
        if (!copied)
            throw new IOException($"loop device {_device} never became idle after the shutdown ioctl: waited {waited.Elapsed.TotalSeconds:F0} s, " +
                                  $"expected no I/O in flight and none completing during the copy, last found (writes, sectors, in flight r/w) {state}");
        Unmount();
        File.Move(copy, _image, overwrite: true);
        AttachAndMount(); // ext4/xfs replay their journal here: the reboot
    }

    /// <summary>How long a cut waits for the loop device to finish the writes in flight when it was cut.</summary>
    private static readonly TimeSpan IdleWaitLimit = TimeSpan.FromSeconds(60);

    /// <summary>Bytes free on the filesystem.</summary>
    public long FreeBytes => new DriveInfo(MountPoint).AvailableFreeSpace;

    private void AttachAndMount()
    {
        _device = AttachLoopDevice(_image);
        var (exit, _, err) = Shell.Try("mount", "-t", _fsType, "-o", "noatime", _device, MountPoint);
        if (exit != 0)
        {
            Shell.Try("losetup", "-d", _device);
            _device = null;
            throw new IOException($"mount of {_fsType} on {_image} failed (after a power cut: the filesystem did not recover): {err}");
        }
    }

    /// <summary>
    /// <c>losetup -f --show</c>: the kernel hands out the first free device. Another program attaching at the
    /// same moment can take the device this call picked (EBUSY); try again, a few times, for the next free one.
    /// </summary>
    private static string AttachLoopDevice(string image)
    {
        for (int attempt = 1; ; attempt++)
        {
            var (exit, stdout, stderr) = Shell.Try("losetup", "-f", "--show", image);
            if (exit == 0) return stdout;
            if (attempt == 5 || !stderr.Contains("busy", StringComparison.OrdinalIgnoreCase))
                throw new IOException($"`losetup -f --show {image}` failed with exit code {exit} (attempt {attempt}): {stderr}");
            Thread.Sleep(50 * attempt);
        }
    }

    private void Unmount()
    {
        if (_device is null) return;
        if (Shell.Try("umount", MountPoint).Exit != 0) Shell.Try("umount", "-l", MountPoint);
        Shell.Try("losetup", "-d", _device);
        _device = null;
    }

    /// <summary>Write I/Os and sectors completed, then I/Os in flight (read, write): equal twice means idle and unchanged.</summary>
    private static string IoState(string sysBlock)
    {
        string[] stat = File.ReadAllText(Path.Combine(sysBlock, "stat")).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string[] inflight = File.ReadAllText(Path.Combine(sysBlock, "inflight")).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return $"{stat[4]} {stat[6]} {inflight[0]} {inflight[1]}";
    }

    // FS_IOC_SHUTDOWN (XFS_IOC_GOINGDOWN, _IOR('X', 125, __u32)); flag 2 = NOLOGFLUSH: no data, no log, nothing.
    private const uint FsIocShutdown = 0x8004587D;
    private const uint ShutdownNoLogFlush = 2;

    private static void Shutdown(string mountPoint)
    {
        int fd = open(mountPoint, 0x10000 /* O_RDONLY | O_DIRECTORY */);
        if (fd < 0) throw new IOException($"open({mountPoint}) for the shutdown ioctl failed: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            uint flag = ShutdownNoLogFlush;
            if (ioctl(fd, FsIocShutdown, ref flag) != 0)
                throw new IOException($"the FS shutdown ioctl on {mountPoint} failed: errno {Marshal.GetLastPInvokeError()} " +
                                      "(this filesystem or kernel cannot simulate a power cut)");
        }
        finally
        {
            close(fd);
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, nuint request, ref uint arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    public void Dispose()
    {
        Unmount();
        Directory.Delete(_work, recursive: true);
    }
}
