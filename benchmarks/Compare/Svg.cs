using System.Globalization;
using System.Text;

namespace MmapQueues.Benchmarks.Compare;

/// <summary>Hand-written SVG line charts: percentile plots of latency and throughput by payload size.</summary>
internal static class Svg
{
    private const int W = 760, H = 420, Left = 70, Right = 250, Top = 40, Bottom = 50;
    private static readonly string[] Colors = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e" };

    /// <summary>
    /// Latency by percentile: x is the percentile on a "nines" scale (-log10(1 - p)), y the latency in µs
    /// on a log10 scale, one polyline per distribution.
    /// </summary>
    public static string Percentiles(string title, IReadOnlyList<Distribution> series)
    {
        double[] ps = { 0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99 };
        double Nines(double p) => -Math.Log10(1 - p / 100);
        double xMax = Nines(99.99);
        var all = series.SelectMany(s => ps.Select(p => Math.Max(0.01, Stats.Percentile(s.SortedNs, p) / 1000.0))).ToList();
        double yMin = Math.Floor(Math.Log10(all.Min())), yMax = Math.Ceiling(Math.Log10(all.Max()));
        if (yMax <= yMin) yMax = yMin + 1;
        var sb = Begin(title, "percentile", "latency (µs, log scale)");
        for (double d = yMin; d <= yMax; d++)
            GridY(sb, Y(d, yMin, yMax), Math.Pow(10, d).ToString("0.##", CultureInfo.InvariantCulture));
        foreach (double p in new[] { 0.0, 50, 90, 99, 99.9, 99.99 })
            GridX(sb, X(Nines(p), 0, xMax), p.ToString("0.##", CultureInfo.InvariantCulture) + "%");
        for (int i = 0; i < series.Count; i++)
        {
            var pts = ps.Select(p => (X(Nines(p), 0, xMax), Y(Math.Log10(Math.Max(0.01, Stats.Percentile(series[i].SortedNs, p) / 1000.0)), yMin, yMax)));
            Line(sb, pts, Colors[i % Colors.Length]);
            Legend(sb, i, series[i].Name + $" (n={series[i].SortedNs.Length:N0})");
        }
        return End(sb);
    }

    /// <summary>Payload GB/s by payload size (x log2 scale), one polyline per implementation.</summary>
    public static string BySize(string title, IReadOnlyList<SizeCurve> curves)
    {
        int[] sizes = curves.SelectMany(c => c.GBps.Keys).Distinct().Order().ToArray();
        double xMin = Math.Log2(sizes[0]), xMax = Math.Log2(sizes[^1]);
        double yMax = Math.Ceiling(curves.SelectMany(c => c.GBps.Values).Max() / 2) * 2;
        if (yMax <= 0) yMax = 1;
        var sb = Begin(title, "payload size (bytes, log scale)", "payload GB/s");
        for (double g = 0; g <= yMax; g += yMax / 5)
            GridY(sb, Y(g, 0, yMax), g.ToString("0.#", CultureInfo.InvariantCulture));
        foreach (int s in sizes)
            GridX(sb, X(Math.Log2(s), xMin, xMax), s >= 1024 ? $"{s / 1024} KiB" : $"{s} B");
        for (int i = 0; i < curves.Count; i++)
        {
            var pts = curves[i].GBps.Select(kv => (X(Math.Log2(kv.Key), xMin, xMax), Y(kv.Value, 0, yMax)));
            Line(sb, pts, Colors[i % Colors.Length]);
            Legend(sb, i, curves[i].Name);
        }
        return End(sb);
    }

    private static double X(double v, double min, double max) => Left + (v - min) / (max - min) * (W - Left - Right);
    private static double Y(double v, double min, double max) => H - Bottom - (v - min) / (max - min) * (H - Top - Bottom);
    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
    private static string Esc(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    private static StringBuilder Begin(string title, string xLabel, string yLabel)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine($"<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
        sb.AppendLine($"<text x=\"{W / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Esc(title)}</text>");
        sb.AppendLine($"<text x=\"{(Left + W - Right) / 2}\" y=\"{H - 10}\" text-anchor=\"middle\">{Esc(xLabel)}</text>");
        sb.AppendLine($"<text x=\"16\" y=\"{(Top + H - Bottom) / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {(Top + H - Bottom) / 2})\">{Esc(yLabel)}</text>");
        sb.AppendLine($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{W - Left - Right}\" height=\"{H - Top - Bottom}\" fill=\"none\" stroke=\"#444\"/>");
        return sb;
    }

    private static void GridY(StringBuilder sb, double y, string label)
    {
        sb.AppendLine($"<line x1=\"{Left}\" y1=\"{F(y)}\" x2=\"{W - Right}\" y2=\"{F(y)}\" stroke=\"#ddd\"/>");
        sb.AppendLine($"<text x=\"{Left - 6}\" y=\"{F(y + 4)}\" text-anchor=\"end\">{Esc(label)}</text>");
    }

    private static void GridX(StringBuilder sb, double x, string label)
    {
        sb.AppendLine($"<line x1=\"{F(x)}\" y1=\"{Top}\" x2=\"{F(x)}\" y2=\"{H - Bottom}\" stroke=\"#ddd\"/>");
        sb.AppendLine($"<text x=\"{F(x)}\" y=\"{H - Bottom + 16}\" text-anchor=\"middle\">{Esc(label)}</text>");
    }

    private static void Line(StringBuilder sb, IEnumerable<(double X, double Y)> pts, string color)
    {
        string points = string.Join(" ", pts.Select(p => $"{F(p.X)},{F(p.Y)}"));
        sb.AppendLine($"<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>");
        foreach (var p in pts) sb.AppendLine($"<circle cx=\"{F(p.X)}\" cy=\"{F(p.Y)}\" r=\"3\" fill=\"{color}\"/>");
    }

    private static void Legend(StringBuilder sb, int i, string name)
    {
        int y = Top + 10 + i * 36;
        sb.AppendLine($"<line x1=\"{W - Right + 12}\" y1=\"{y}\" x2=\"{W - Right + 32}\" y2=\"{y}\" stroke=\"{Colors[i % Colors.Length]}\" stroke-width=\"3\"/>");
        // Wrap long names over two lines.
        string first = name, second = "";
        if (name.Length > 30)
        {
            int cut = name.LastIndexOf(' ', 30);
            if (cut > 0) { first = name[..cut]; second = name[(cut + 1)..]; }
        }
        sb.AppendLine($"<text x=\"{W - Right + 38}\" y=\"{y + 4}\">{Esc(first)}</text>");
        if (second.Length > 0) sb.AppendLine($"<text x=\"{W - Right + 38}\" y=\"{y + 18}\">{Esc(second)}</text>");
    }

    private static string End(StringBuilder sb) => sb.AppendLine("</svg>").ToString();
}
