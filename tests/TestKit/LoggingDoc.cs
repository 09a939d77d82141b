using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MmapQueues.Tests;

/// <summary>The check every assembly with <c>[LoggerMessage]</c> events makes against docs/LOGGING.md.</summary>
public static partial class LoggingDoc
{
    /// <summary>
    /// Asserts that the <c>[LoggerMessage]</c> methods of <paramref name="logClass"/> use distinct event ids,
    /// all within [<paramref name="min"/>, <paramref name="max"/>], and that each id has a row in docs/LOGGING.md.
    /// </summary>
    public static void AssertEventIdsUniqueInRangeAndListed(Type logClass, int min, int max)
    {
        var ids = logClass.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>())
            .Where(a => a is not null)
            .Select(a => a!.EventId)
            .ToList();
        Assert.NotEmpty(ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(ids, id => Assert.InRange(id, min, max));
        string doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "LOGGING.md"));
        var documented = DocRow().Matches(doc).Select(m => int.Parse(m.Groups[1].Value)).ToHashSet();
        Assert.All(ids, id => Assert.True(documented.Contains(id), $"event id {id} is not in docs/LOGGING.md"));
    }

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MmapQueue.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no MmapQueue.sln above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex(@"^\|\s*(\d{4})\s*\|", RegexOptions.Multiline)]
    private static partial Regex DocRow();
}
