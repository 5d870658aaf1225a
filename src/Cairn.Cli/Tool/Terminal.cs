using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Cairn.Cli.Tool;

/// <summary>The console: Spectre tables for people, JSON for scripts, spinners only on a terminal.</summary>
internal static class Terminal
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Spinners and bars only when a person watches stdout (not when it is piped or redirected).</summary>
    public static bool Interactive => !Console.IsOutputRedirected;

    /// <summary>
    /// The width tables must fit: <c>$COLUMNS</c> when set (so <c>COLUMNS=80 cairn ... | less</c> fits too), else the
    /// terminal's, else (piped) unlimited: lines stay whole for grep and awk.
    /// </summary>
    public static int Width => ColumnsVariable(Environment.GetEnvironmentVariable("COLUMNS")) ?? (Interactive ? TerminalWidth() : int.MaxValue);

    /// <summary>A usable <c>$COLUMNS</c> value (a positive number), or null.</summary>
    public static int? ColumnsVariable(string? value) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0 ? n : null;

    private static int TerminalWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 80; }
        catch (IOException) { return 80; }
    }

    public static IAnsiConsole CreateStdout()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = Interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = Interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = Interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        // Piped tables should not wrap at 80 columns, unless $COLUMNS asks for a width.
        if (ColumnsVariable(Environment.GetEnvironmentVariable("COLUMNS")) is { } columns) console.Profile.Width = columns;
        else if (!Interactive) console.Profile.Width = 400;
        return console;
    }

    /// <summary>A table with a header row: rounded borders on a terminal, plain aligned columns when piped.</summary>
    public static Table NewTable(params string[] headers)
    {
        var table = new Table { Border = Interactive ? TableBorder.Rounded : TableBorder.None };
        foreach (var h in headers)
        {
            var column = new TableColumn(new Text(h, Interactive ? new Style(decoration: Decoration.Bold) : Style.Plain)) { NoWrap = h is not ("NOTE" or "METADATA" or "ASSIGNMENT" or "MEMBER") };
            if (h is "PARTITION" or "PARTITIONS" or "CURRENT" or "TARGET" or "REQUESTED" or "LOG START" or "LOG END" or "LAG" or "LAG TIME" or "SIZE"
                or "COMMITTED" or "RECORDS" or "LEADER" or "OFFSET" or "MEMBERS")
                column.RightAligned();
            table.AddColumn(column);
        }
        return table;
    }

    /// <summary>Adds a row of plain text cells (no markup interpretation).</summary>
    public static void AddTextRow(this Table table, params string?[] cells) =>
        table.AddRow(cells.Select(c => (IRenderable)new Text(c ?? "-")).ToArray());

    public static void WriteJson(JsonNode node) => Console.Out.WriteLine(node.ToJsonString(JsonOptions));

    /// <summary>A document shared with the admin API, serialized as the admin API does (camelCase), indented.</summary>
    public static void WriteDocument<T>(T document) => Console.Out.WriteLine(Cairn.Admin.Model.AdminDocuments.ToJsonText(document));

    /// <summary>
    /// Lines laid out by <see cref="TextTable"/>, straight to stdout (a console would wrap a line longer than its width,
    /// splitting a word); the header line bold on a terminal.
    /// </summary>
    public static void WriteLines(IReadOnlyList<string> lines, bool firstIsHeader)
    {
        for (int i = 0; i < lines.Count; i++)
            Console.Out.WriteLine(i == 0 && firstIsHeader && Interactive ? $"\u001b[1m{lines[i]}\u001b[0m" : lines[i]);
    }

    public static void Line(this IAnsiConsole console, string text) => console.WriteLine(text);

    /// <summary>A note for people: to stdout with the table output, otherwise nothing (JSON output stays one document).</summary>
    public static void Note(this IAnsiConsole console, string text, string style = "grey") =>
        console.Write(new Text(text + "\n", Interactive ? Style.Parse(style) : Style.Plain));

    public static async Task<T> ProgressAsync<T>(IAnsiConsole console, string label, Func<Action<string>, Task<T>> work)
    {
        if (!Interactive || !console.Profile.Capabilities.Interactive) return await work(_ => { });
        return await console.Status()
            .Spinner(Spinner.Known.Dots)
            .AutoRefresh(true)
            .StartAsync(label, ctx => work(s => ctx.Status(Markup.Escape(s))));
    }

    public static string Int(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    public static string Int(long? value) => value is { } v ? Int(v) : "-";

    /// <summary>1.2 KiB, 3.4 MiB, ...</summary>
    public static string Bytes(long? bytes)
    {
        if (bytes is not { } b) return "-";
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = b;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{b} B" : v.ToString(v < 10 ? "0.0" : "0", System.Globalization.CultureInfo.InvariantCulture) + " " + units[u];
    }

    /// <summary>2h03m, 45.2s, 3d04h.</summary>
    public static string Duration(double? seconds)
    {
        if (seconds is not { } s) return "-";
        if (s < 60) return s.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "s";
        var t = TimeSpan.FromSeconds(s);
        if (t.TotalHours < 1) return $"{(int)t.TotalMinutes}m{t.Seconds:00}s";
        if (t.TotalDays < 1) return $"{(int)t.TotalHours}h{t.Minutes:00}m";
        return $"{(int)t.TotalDays}d{t.Hours:00}h";
    }
}
