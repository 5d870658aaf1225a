using System.Text;

namespace Cairn.Cli.Tool;

/// <summary>A column of a <see cref="TextTable"/>.</summary>
/// <param name="ShortHeader">the header used when the table does not fit with the full ones</param>
/// <param name="DropOrder">0: always shown; otherwise columns are left out, lowest first, until the table fits</param>
internal sealed record TextColumn(string Header, string? ShortHeader = null, bool RightAligned = false, int DropOrder = 0);

/// <summary>
/// Plain aligned tables (like Kafka's tools print them) that fit a width without ever breaking a cell: with the full
/// headers if they fit, else with the short headers, else without the least important columns; and when even the
/// essential columns do not fit, one block of "HEADER value" lines per row. A cell is never cut or wrapped, so what is
/// printed can be copied (a member id, a topic name).
/// </summary>
internal static class TextTable
{
    private const int Gap = 2;

    /// <summary>The lines of the table and which columns (indexes) it shows.</summary>
    public sealed record Layout(IReadOnlyList<string> Lines, IReadOnlySet<int> Shown);

    public static Layout Fit(IReadOnlyList<TextColumn> columns, IReadOnlyList<string[]> rows, int width)
    {
        int Natural(int c, bool abbreviated) =>
            Math.Max((abbreviated ? columns[c].ShortHeader ?? columns[c].Header : columns[c].Header).Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length));
        int Total(IEnumerable<int> shown, bool abbreviated) { var s = shown.ToList(); return s.Sum(c => Natural(c, abbreviated)) + Gap * Math.Max(0, s.Count - 1); }

        var shown = Enumerable.Range(0, columns.Count).ToList();
        bool abbreviated = false;
        if (Total(shown, false) > width)
        {
            abbreviated = true;
            foreach (var c in shown.Where(c => columns[c].DropOrder > 0).OrderBy(c => columns[c].DropOrder).ToList())
            {
                if (Total(shown, true) <= width) break;
                shown.Remove(c);
            }
            if (Total(shown, false) <= width) abbreviated = false;
        }
        if (Total(shown, abbreviated) > width) return new Layout(Blocks(columns, rows, width), Enumerable.Range(0, columns.Count).ToHashSet());

        var widths = shown.ToDictionary(c => c, c => Natural(c, abbreviated));
        var lines = new List<string> { Line(shown.Select(c => abbreviated ? columns[c].ShortHeader ?? columns[c].Header : columns[c].Header).ToList()) };
        foreach (var r in rows) lines.Add(Line(shown.Select(c => r[c]).ToList()));
        return new Layout(lines, shown.ToHashSet());

        string Line(IReadOnlyList<string> cells)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < shown.Count; i++)
            {
                int c = shown[i];
                if (i > 0) sb.Append(' ', Gap);
                sb.Append(columns[c].RightAligned ? cells[i].PadLeft(widths[c]) : cells[i].PadRight(widths[c]));
            }
            return sb.ToString().TrimEnd();
        }
    }

    /// <summary>Each row as its first cell, then one indented "HEADER  value" line per other column.</summary>
    private static List<string> Blocks(IReadOnlyList<TextColumn> columns, IReadOnlyList<string[]> rows, int width)
    {
        int headerWidth = columns.Skip(1).Select(c => c.Header.Length).DefaultIfEmpty(0).Max();
        var lines = new List<string>();
        foreach (var r in rows)
        {
            lines.Add($"{columns[0].Header} {r[0]}");
            for (int c = 1; c < columns.Count; c++)
                lines.AddRange(Wrap(r[c], width, "  " + columns[c].Header.PadRight(headerWidth + Gap)));
        }
        return lines;
    }

    /// <summary>
    /// Words (split at spaces) filled into lines of at most <paramref name="width"/>, the first line after
    /// <paramref name="prefix"/>, the others indented as far. A word longer than a line gets a line of its own, whole.
    /// </summary>
    public static List<string> Wrap(string text, int width, string prefix = "")
    {
        var lines = new List<string>();
        var indent = new string(' ', prefix.Length);
        var line = new StringBuilder(prefix);
        bool empty = true;
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!empty && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear().Append(indent);
                empty = true;
            }
            if (!empty) line.Append(' ');
            line.Append(word);
            empty = false;
        }
        lines.Add(line.ToString().TrimEnd());
        return lines;
    }
}
