using System.Globalization;

namespace MmapQueues.Storage;

/// <summary>File names inside a queue directory.</summary>
internal static class SegmentNames
{
    public const string Extension = ".seg";
    /// <summary>The spare segment is a temporary file named after this: <c>next.seg.{random}.tmp</c>.</summary>
    public const string SpareStem = "next.seg";
    public const string MetaName = Format.MetaLayout.FileName;
    public const string LockName = "lock";
    public const string CursorsName = "cursors";

    public static string For(string directory, long baseSequence) =>
        Path.Combine(directory, baseSequence.ToString("D20", CultureInfo.InvariantCulture) + Extension);

    /// <summary>Parses "00000000000000001234.seg" into 1234; false for any other name.</summary>
    public static bool TryParse(string fileName, out long baseSequence)
    {
        baseSequence = 0;
        return fileName.Length == 20 + Extension.Length
            && fileName.EndsWith(Extension, StringComparison.Ordinal)
            && long.TryParse(fileName.AsSpan(0, 20), NumberStyles.None, CultureInfo.InvariantCulture, out baseSequence);
    }
}
