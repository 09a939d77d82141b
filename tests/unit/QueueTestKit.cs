namespace MmapQueues.Tests;

/// <summary>Unit-test helpers over the shared test kit (tests/TestKit): fill, read back, count files and mappings.</summary>
internal static class QueueTestKit
{
    public const long SegmentSize = 64 * 1024;

    /// <summary>1000-byte payloads: 1008-byte frames, 64 records per 64 KiB segment.</summary>
    public const int PayloadSize = 1000;
    public const int RecordsPerSegment = (int)((SegmentSize - 64) / 1008);

    public static MmapQueueOptions Options(Action<MmapQueueOptions>? change = null) => TestOptions.Small(segmentSize: SegmentSize, change: change);

    /// <summary>The kit's payload of <paramref name="seq"/>, <see cref="PayloadSize"/> bytes unless told.</summary>
    public static byte[] Payload(long seq, int length = PayloadSize) => TestPayloads.For(seq, length);

    public static void Fill(MmapQueue q, long count, int length = PayloadSize, bool settle = true)
    {
        for (long i = 0; i < count; i++)
        {
            long seq = q.NextSequence;
            Assert.Equal(seq, q.Enqueue(Payload(seq, length)));
        }
        // Rolls start index builds that hold their sealed segment briefly; let them finish so tests that
        // assert exactly which segments retention deletes see only readers' holds. (Not while a claim is
        // open: an index build waits for every record reserved before its seal to be published.)
        if (settle) q.WaitForBackgroundWork();
    }

    /// <summary>Reads <paramref name="count"/> records and checks each carries its own sequence's payload.</summary>
    public static void ReadExpecting(QueueReader r, long count, int length = PayloadSize)
    {
        for (long i = 0; i < count; i++)
        {
            long seq = r.NextSequence;
            Assert.True(r.TryRead(out var p), $"record {seq} missing");
            Assert.True(p.SequenceEqual(Payload(seq, length)), $"record {seq} has the wrong payload");
        }
    }

    /// <summary>Reads everything from <paramref name="from"/> on and checks each payload; returns the sequence after the last.</summary>
    public static long ReadAllAndCheck(MmapQueue q, long from, Func<long, int> length)
    {
        using var r = q.OpenReader(from);
        long expect = from;
        while (r.TryRead(out var p))
        {
            Assert.True(TestPayloads.Matches(p, expect, length(expect)), $"payload of sequence {expect} differs");
            expect++;
        }
        return expect;
    }

    public static string[] SegmentFileNames(string dir) =>
        Directory.GetFiles(dir, "*.seg").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    public static string SegmentName(long baseSequence) => baseSequence.ToString("D20") + ".seg";

    /// <summary>Open file descriptors of this process that point into <paramref name="dir"/> (other tests run in parallel).</summary>
    public static int OpenFilesUnder(string dir)
    {
        int n = 0;
        foreach (string fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (IOException)
            {
                continue; // the descriptor closed while we listed it
            }
            if (target is not null && target.StartsWith(dir + "/", StringComparison.Ordinal)) n++;
        }
        return n;
    }

    /// <summary>
    /// Mappings in /proc/self/maps of files in <paramref name="dir"/> (deleted ones included), but the writer's
    /// one-page <c>notify</c> mapping, which stays for as long as the queue is open (it is gone after Dispose).
    /// </summary>
    public static int MappingsUnder(string dir) =>
        File.ReadAllLines("/proc/self/maps").Count(l => l.Contains(dir + "/", StringComparison.Ordinal) && !l.EndsWith("/notify", StringComparison.Ordinal));
}
