using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Cairn.Tests.Admin;

public sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value, long? Timestamp)
{
    public string? Label(string name) => Labels.GetValueOrDefault(name);
}

public sealed class PromFamily(string name)
{
    public string Name { get; } = name;
    public string? Type { get; set; }
    public string? Help { get; set; }
    public List<PromSample> Samples { get; } = [];
}

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4. It rejects anything the format does not allow and
/// checks what Prometheus relies on: every line's grammar (names, label syntax and escapes, float values, optional
/// int64 timestamp), a final line feed, at most one HELP and one TYPE per family and both before its first sample,
/// a TYPE for every family (unless <c>requireType</c> is off), samples of a family kept together, sample names that
/// fit the family's type (histogram _bucket/_sum/_count with le, summary quantile), no duplicate label names, no
/// duplicate series, non-negative counters, and for histograms: le values parseable and strictly increasing, a +Inf
/// bucket, cumulative (non-decreasing) bucket counts, and _count equal to the +Inf bucket.
/// </summary>
public static class PrometheusTextParser
{
    private static readonly Regex MetricName = new("^[a-zA-Z_:][a-zA-Z0-9_:]*$", RegexOptions.CultureInvariant);
    private static readonly Regex LabelName = new("^[a-zA-Z_][a-zA-Z0-9_]*$", RegexOptions.CultureInvariant);
    private static readonly Regex Float = new(@"^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf)$|^NaN$", RegexOptions.CultureInvariant);
    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    public sealed class FormatError(int line, string message) : Exception($"line {line}: {message}")
    {
        public int Line { get; } = line;
    }

    public static IReadOnlyDictionary<string, PromFamily> Parse(string text, bool requireType = true)
    {
        if (text.Length == 0) return new Dictionary<string, PromFamily>();
        if (!text.EndsWith('\n')) throw new FormatError(text.Count(c => c == '\n') + 1, "the last line must end with a line feed");
        if (text.Contains('\r')) throw new FormatError(1 + text[..text.IndexOf('\r')].Count(c => c == '\n'), "carriage return: lines end with \\n only");

        var families = new Dictionary<string, PromFamily>(StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal); // families whose samples are over
        var seenSeries = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;
        var lines = text[..^1].Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int n = i + 1;
            var line = lines[i];
            if (line.Trim(' ', '\t').Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var rest = line[1..].TrimStart(' ', '\t');
                var keyword = rest.Split([' ', '\t'], 2)[0];
                if (keyword is not ("HELP" or "TYPE")) continue; // a comment
                var parts = rest[keyword.Length..].TrimStart(' ', '\t');
                int space = parts.IndexOfAny([' ', '\t']);
                var name = space < 0 ? parts : parts[..space];
                var argument = space < 0 ? "" : parts[(space + 1)..];
                if (!MetricName.IsMatch(name)) throw new FormatError(n, $"bad metric name '{name}' in {keyword}");
                if (!families.TryGetValue(name, out var family)) families[name] = family = new PromFamily(name);
                if (family.Samples.Count > 0 || finished.Contains(name)) throw new FormatError(n, $"{keyword} for '{name}' after its samples");
                if (current is not null && current != name) { finished.Add(current); current = null; }
                if (keyword == "HELP")
                {
                    if (family.Help is not null) throw new FormatError(n, $"second HELP for '{name}'");
                    family.Help = Unescape(argument, n, allowQuote: false);
                }
                else
                {
                    if (family.Type is not null) throw new FormatError(n, $"second TYPE for '{name}'");
                    var type = argument.Trim(' ', '\t');
                    if (!Types.Contains(type)) throw new FormatError(n, $"unknown type '{type}'");
                    family.Type = type;
                }
                continue;
            }

            var sample = ParseSample(line, n);
            var familyName = FamilyOf(sample.Name, families);
            if (!families.TryGetValue(familyName, out var f))
            {
                if (requireType) throw new FormatError(n, $"sample '{sample.Name}' has no TYPE line before it");
                families[familyName] = f = new PromFamily(familyName) { Type = "untyped" };
            }
            if (requireType && f.Type is null) throw new FormatError(n, $"sample '{sample.Name}' has no TYPE line before it");
            if (finished.Contains(familyName)) throw new FormatError(n, $"samples of '{familyName}' are not kept together");
            if (current is not null && current != familyName) finished.Add(current);
            current = familyName;
            CheckSampleFitsType(f, sample, n);
            var seriesKey = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}";
            if (!seenSeries.Add(seriesKey)) throw new FormatError(n, $"duplicate series {seriesKey}");
            f.Samples.Add(sample);
        }
        foreach (var f in families.Values) if (f.Type == "histogram") CheckHistogram(f);
        return families;
    }

    private static string FamilyOf(string sampleName, Dictionary<string, PromFamily> families)
    {
        if (families.ContainsKey(sampleName) && families[sampleName].Type is not ("histogram")) return sampleName;
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (!sampleName.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var baseName = sampleName[..^suffix.Length];
            if (families.TryGetValue(baseName, out var f) && (f.Type == "histogram" || (f.Type == "summary" && suffix != "_bucket"))) return baseName;
        }
        return sampleName;
    }

    private static void CheckSampleFitsType(PromFamily f, PromSample s, int n)
    {
        switch (f.Type)
        {
            case "counter":
                if (s.Name != f.Name) throw new FormatError(n, $"counter sample '{s.Name}' must be named '{f.Name}'");
                if (double.IsNaN(s.Value) || s.Value < 0) throw new FormatError(n, $"counter '{s.Name}' has negative or NaN value {s.Value}");
                break;
            case "gauge" or "untyped":
                if (s.Name != f.Name) throw new FormatError(n, $"sample '{s.Name}' does not belong to '{f.Name}'");
                break;
            case "histogram":
                if (s.Name == f.Name + "_bucket")
                {
                    if (s.Label("le") is not { } le) throw new FormatError(n, "histogram bucket without le");
                    if (!Float.IsMatch(le)) throw new FormatError(n, $"le '{le}' is not a float");
                    if (s.Value < 0 || double.IsNaN(s.Value)) throw new FormatError(n, "bucket count must be a non-negative number");
                }
                else if (s.Name == f.Name + "_sum" || s.Name == f.Name + "_count")
                {
                    if (s.Labels.ContainsKey("le")) throw new FormatError(n, $"{s.Name} must not have le");
                }
                else throw new FormatError(n, $"histogram sample '{s.Name}' is not _bucket, _sum or _count");
                break;
            case "summary":
                if (s.Name == f.Name) { if (!s.Labels.ContainsKey("quantile")) throw new FormatError(n, "summary sample without quantile"); }
                else if (s.Name != f.Name + "_sum" && s.Name != f.Name + "_count") throw new FormatError(n, $"summary sample '{s.Name}' is not a quantile, _sum or _count");
                break;
        }
    }

    private static void CheckHistogram(PromFamily f)
    {
        string SeriesOf(PromSample s) => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value));
        foreach (var series in f.Samples.GroupBy(SeriesOf))
        {
            var buckets = series.Where(s => s.Name == f.Name + "_bucket").ToList();
            if (buckets.Count == 0) throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}} has no buckets");
            double previousLe = double.NegativeInfinity, previousCount = 0;
            foreach (var b in buckets)
            {
                double le = ParseFloat(b.Label("le")!);
                if (!(le > previousLe)) throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}}: le {b.Label("le")} does not increase");
                if (b.Value < previousCount) throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}}: bucket le={b.Label("le")} count {b.Value} < previous {previousCount} (not cumulative)");
                previousLe = le;
                previousCount = b.Value;
            }
            if (!double.IsPositiveInfinity(previousLe)) throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}} has no +Inf bucket last");
            var count = series.SingleOrDefault(s => s.Name == f.Name + "_count") ?? throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}} has no _count");
            _ = series.SingleOrDefault(s => s.Name == f.Name + "_sum") ?? throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}} has no _sum");
            if (count.Value != previousCount) throw new FormatError(0, $"histogram {f.Name}{{{series.Key}}}: _count {count.Value} != +Inf bucket {previousCount}");
        }
    }

    private static PromSample ParseSample(string line, int n)
    {
        int i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':')) i++;
        var name = line[..i];
        if (!MetricName.IsMatch(name)) throw new FormatError(n, $"bad metric name '{name}'");
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i >= line.Length) throw new FormatError(n, "unterminated label set");
                if (line[i] == '}') { i++; break; }
                int start = i;
                while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_')) i++;
                var labelName = line[start..i];
                if (!LabelName.IsMatch(labelName)) throw new FormatError(n, $"bad label name '{labelName}'");
                if (labelName.StartsWith("__", StringComparison.Ordinal)) throw new FormatError(n, $"label name '{labelName}' is reserved");
                if (i >= line.Length || line[i] != '=') throw new FormatError(n, $"expected = after label '{labelName}'");
                i++;
                if (i >= line.Length || line[i] != '"') throw new FormatError(n, $"expected \" to open the value of '{labelName}'");
                i++;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length) throw new FormatError(n, $"unterminated value of label '{labelName}'");
                    char c = line[i++];
                    if (c == '"') break;
                    if (c == '\\')
                    {
                        if (i >= line.Length) throw new FormatError(n, "dangling backslash");
                        char e = line[i++];
                        value.Append(e switch { '\\' => '\\', '"' => '"', 'n' => '\n', _ => throw new FormatError(n, $"invalid escape \\{e} in label value") });
                    }
                    else value.Append(c);
                }
                if (!labels.TryAdd(labelName, value.ToString())) throw new FormatError(n, $"duplicate label '{labelName}'");
                if (i < line.Length && line[i] == ',') { i++; continue; }
                if (i < line.Length && line[i] == '}') { i++; break; }
                throw new FormatError(n, "expected , or } after a label");
            }
        }
        if (i >= line.Length || line[i] is not (' ' or '\t')) throw new FormatError(n, "expected whitespace before the value");
        var tokens = line[i..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length is 0 or > 2) throw new FormatError(n, "expected a value and an optional timestamp");
        if (!Float.IsMatch(tokens[0])) throw new FormatError(n, $"bad value '{tokens[0]}'");
        long? timestamp = null;
        if (tokens.Length == 2)
        {
            if (!long.TryParse(tokens[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var ts)) throw new FormatError(n, $"bad timestamp '{tokens[1]}'");
            timestamp = ts;
        }
        return new PromSample(name, labels, ParseFloat(tokens[0]), timestamp);
    }

    private static double ParseFloat(string s) => s switch
    {
        "+Inf" or "Inf" or "inf" or "+inf" => double.PositiveInfinity,
        "-Inf" or "-inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    private static string Unescape(string text, int n, bool allowQuote)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c != '\\') { sb.Append(c); continue; }
            if (++i >= text.Length) throw new FormatError(n, "dangling backslash in HELP");
            sb.Append(text[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                '"' when allowQuote => '"',
                var e => throw new FormatError(n, $"invalid escape \\{e} in HELP"),
            });
        }
        return sb.ToString();
    }

    /// <summary>The one sample of a family with exactly these labels (others may exist with more labels).</summary>
    public static PromSample Single(this IReadOnlyDictionary<string, PromFamily> families, string sampleName, params (string Name, string Value)[] labels)
    {
        var familyName = families.ContainsKey(sampleName) ? sampleName
            : families.Keys.FirstOrDefault(k => sampleName.StartsWith(k, StringComparison.Ordinal) && sampleName.Length > k.Length && families[k].Type == "histogram")
              ?? throw new Xunit.Sdk.XunitException($"no family for '{sampleName}'");
        var matches = families[familyName].Samples
            .Where(s => s.Name == sampleName && labels.All(l => s.Label(l.Name) == l.Value) && s.Labels.Count == labels.Length)
            .ToList();
        if (matches.Count != 1)
            throw new Xunit.Sdk.XunitException($"expected one sample {sampleName}{{{string.Join(",", labels.Select(l => $"{l.Name}=\"{l.Value}\""))}}}, found {matches.Count}");
        return matches[0];
    }
}
