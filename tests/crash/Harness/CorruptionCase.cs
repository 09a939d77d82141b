using System.Globalization;

namespace MmapQueues.Tests.Crash.Harness;

/// <summary>How a byte-level mutation of a queue file is made.</summary>
internal enum MutationKind { FlipBit, ZeroRange, GarbleRange, Truncate }

/// <summary>One seeded mutation: which file, what, where. Reproducible from (corpus, seed).</summary>
internal sealed record Mutation(string File, MutationKind Kind, long Offset, int Length, int Bit)
{
    /// <summary>Picks a mutation for the queue files in <paramref name="dir"/>: mostly segments, sometimes queue.meta.</summary>
    public static Mutation Pick(string dir, Random rng)
    {
        string[] segments = Directory.GetFiles(dir, "*.seg").Order(StringComparer.Ordinal).ToArray();
        string file = rng.Next(20) == 0 ? Path.Combine(dir, "queue.meta") : segments[rng.Next(segments.Length)];
        long length = new FileInfo(file).Length;
        var kind = (MutationKind)rng.Next(4);
        long offset = rng.Next(8) == 0 ? rng.NextInt64(Math.Min(length, 64)) : rng.NextInt64(length); // headers get extra attention
        int span = kind is MutationKind.ZeroRange or MutationKind.GarbleRange ? 1 + rng.Next(rng.Next(2) == 0 ? 8 : 600) : 1;
        return new Mutation(Path.GetFileName(file), kind, offset, span, rng.Next(8));
    }

    /// <summary>Applies the mutation to the copy in <paramref name="dir"/>; false when it changed nothing (zeros over zeros).</summary>
    public bool ApplyTo(string dir, Random rng)
    {
        string path = Path.Combine(dir, File);
        if (Kind == MutationKind.Truncate)
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
            fs.SetLength(Offset);
            return true;
        }
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        int end = (int)Math.Min(bytes.Length, Offset + Length);
        byte[] before = bytes[(int)Offset..end];
        for (long i = Offset; i < end; i++)
        {
            bytes[i] = Kind switch
            {
                MutationKind.FlipBit => (byte)(bytes[i] ^ (1 << Bit)),
                MutationKind.ZeroRange => 0,
                _ => (byte)rng.Next(256),
            };
        }
        System.IO.File.WriteAllBytes(path, bytes);
        return !before.AsSpan().SequenceEqual(bytes.AsSpan((int)Offset, end - (int)Offset));
    }

    public override string ToString() =>
        Kind switch
        {
            MutationKind.FlipBit => $"flip bit {Bit} of {File} at {Offset}",
            MutationKind.Truncate => $"truncate {File} to {Offset} bytes",
            _ => $"{Kind} {File} [{Offset}, {Offset + Length})",
        } + string.Create(CultureInfo.InvariantCulture, $"");
}
