// Open time of a large queue against the floor of listing, opening and mapping its files, and the
// resident set while one reader scans all of it.
//
//   dotnet run -c Release --project benchmarks/OpenTime -- [directory] [GiB] [runs]
//
// Defaults: /tmp/mmapq-opentime, 10 GiB, 15 runs. The directory is created, filled and deleted again.
//
// Issue 11's rows (OpenAfterClose.cs): a flushed 2 GiB queue with 1 GiB and 64 MiB segments, to the first
// record read, warm, cold, and cold after a kill (cold rows need root: they drop the page cache):
//
//   dotnet run -c Release --project benchmarks/OpenTime -- open2g [directory] [runs]
using System.Diagnostics;
using System.Runtime.InteropServices;
using MmapQueues;
using MmapQueues.OpenTime;

if (args.Length > 0 && args[0] == "kill-child")
{
    OpenAfterClose.ChildAppendsAndKillsItself(args[1], long.Parse(args[2]));
    return;
}
if (args.Length > 0 && args[0] == "open2g")
{
    OpenAfterClose.Run(args.Length > 1 ? args[1] : "/tmp/mmapq-open2g", args.Length > 2 ? int.Parse(args[2]) : 5);
    return;
}

string dir = args.Length > 0 ? args[0] : "/tmp/mmapq-opentime";
long gib = args.Length > 1 ? long.Parse(args[1]) : 10;
int runs = args.Length > 2 ? int.Parse(args[2]) : 15;
const int PayloadBytes = 64 * 1024;
var options = new MmapQueueOptions { FlushMode = FlushMode.Async }; // 64 MiB segments (the default)

if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
try
{
    // 1. Fill: real records, so the scan below reads real data.
    var sw = Stopwatch.StartNew();
    long records = (gib << 30) / (PayloadBytes + 8);
    var payload = new byte[PayloadBytes];
    Random.Shared.NextBytes(payload);
    using (var q = new MmapQueue(dir, options))
    {
        for (long i = 0; i < records; i++) q.Enqueue(payload);
    }
    int files = Directory.GetFiles(dir, "*.seg").Length;
    long bytes = Directory.GetFiles(dir, "*.seg").Sum(f => new FileInfo(f).Length);
    Console.WriteLine($"filled {records:N0} records of {PayloadBytes} B in {files} segments ({bytes / (1 << 20):N0} MiB) in {sw.Elapsed.TotalSeconds:F1} s");

    // 2. Open (warm page cache: the files were just written). Median of `runs`.
    var open = new List<double>();
    var floorMap = new List<double>();
    var floorHeader = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        sw.Restart();
        var q = new MmapQueue(dir, options);
        open.Add(sw.Elapsed.TotalMilliseconds);
        q.Dispose();

        sw.Restart();
        Baseline.ListOpenMapUnmap(dir);
        floorMap.Add(sw.Elapsed.TotalMilliseconds);

        sw.Restart();
        Baseline.ListOpenReadHeader(dir);
        floorHeader.Add(sw.Elapsed.TotalMilliseconds);
    }
    Console.WriteLine($"open MmapQueue:                        median {Median(open):F2} ms (min {open.Min():F2}, max {open.Max():F2})");
    Console.WriteLine($"floor: list + open + mmap + munmap:    median {Median(floorMap):F2} ms (min {floorMap.Min():F2}, max {floorMap.Max():F2})");
    Console.WriteLine($"floor: list + open + read 64 B header: median {Median(floorHeader):F2} ms (min {floorHeader.Min():F2}, max {floorHeader.Max():F2})");

    // 3. One reader scans everything; sample RSS and the queue's mappings every segment's worth of records.
    using (var q = new MmapQueue(dir, options))
    {
        long rssBefore = Proc.RssKiB();
        long maxRss = rssBefore, maxMaps = 0, sum = 0, read = 0;
        long perSegment = records / files;
        sw.Restart();
        using (var reader = q.OpenReader(0))
        {
            while (reader.TryRead(out var view))
            {
                sum += view[^1];
                if (++read % perSegment == 0)
                {
                    maxRss = Math.Max(maxRss, Proc.RssKiB());
                    maxMaps = Math.Max(maxMaps, Proc.MappingsUnder(dir));
                }
            }
        }
        double scanS = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"scan: {read:N0} records, {read * PayloadBytes / scanS / 1e9:F2} GB/s (CRC checked); " +
                          $"RSS before {rssBefore / 1024} MiB, max during scan {maxRss / 1024} MiB; max queue mappings {maxMaps} (checksum {sum})");

        // 4. Seek into the middle of a sealed segment after reopen: binary search + side-file index + short scan.
        var seek = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            long target = (records / 2 + r * 7919) % records;
            sw.Restart();
            using var reader = q.OpenReader(target);
            reader.TryRead(out _);
            seek.Add(sw.Elapsed.TotalMilliseconds * 1000);
        }
        Console.WriteLine($"open a reader at a middle sequence and read it: median {Median(seek):F0} us (first {seek[0]:F0} us)");
    }
}
finally
{
    Directory.Delete(dir, recursive: true);
}

static double Median(List<double> xs)
{
    var s = xs.Order().ToArray();
    return s[s.Length / 2];
}

namespace MmapQueues.OpenTime
{
    /// <summary>What any open must at least do: list the directory, open each file, map it (or read its header).</summary>
    internal static partial class Baseline
    {
        public static void ListOpenMapUnmap(string dir)
        {
            foreach (string f in Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal))
            {
                using var h = File.OpenHandle(f, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                long len = RandomAccess.GetLength(h);
                nint p = mmap(0, (nuint)len, 3, 1, (int)h.DangerousGetHandle(), 0);
                if (p == -1) throw new IOException($"mmap {f} failed: {Marshal.GetLastPInvokeError()}");
                munmap(p, (nuint)len);
            }
        }

        public static void ListOpenReadHeader(string dir)
        {
            Span<byte> header = stackalloc byte[64];
            foreach (string f in Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal))
            {
                using var h = File.OpenHandle(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                RandomAccess.Read(h, header, 0);
            }
        }

        [LibraryImport("libc", SetLastError = true)]
        private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

        [LibraryImport("libc", SetLastError = true)]
        private static partial int munmap(nint addr, nuint length);
    }

    internal static class Proc
    {
        public static long RssKiB()
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim());
            return -1;
        }

        public static int MappingsUnder(string dir) =>
            File.ReadLines("/proc/self/maps").Count(l => l.Contains(dir + "/", StringComparison.Ordinal));
    }
}
