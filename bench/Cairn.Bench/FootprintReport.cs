using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cairn.Bench;

/// <summary>One memory figure: the broker's /proc status at the end of a phase (and the peak VmRSS sampled during it).</summary>
internal sealed record MemoryRow(string Condition, ProcessSample Sample, long? PeakRssKb, string Note);

/// <summary>One start-up or recovery figure: the seconds from process start to a complete Metadata answer, per restart.</summary>
internal sealed class TimingRow
{
    public required string Section { get; init; }
    public required string Condition { get; init; }
    public required int Partitions { get; init; }
    public double? DataGb { get; init; }
    public int? SegmentsPerPartition { get; init; }
    public List<double> Seconds { get; } = [];
    /// <summary>The broker's user + system CPU seconds from its start to ready, per restart.</summary>
    public List<double> CpuSeconds { get; } = [];
    public double? Median => Bench.Median(Seconds);
    public double? MedianCpu => Bench.Median(CpuSeconds);
}

/// <summary>What the footprint benchmark measured, as a Markdown report and as JSON.</summary>
internal sealed class FootprintResults
{
    public List<MemoryRow> Memory { get; } = [];
    public List<TimingRow> Timings { get; } = [];
    public List<string> Issues { get; } = [];
    public List<string> Notes { get; } = [];
    public string LoadAtStart { get; set; } = "";
    public string LoadAtEnd { get; set; } = "";
    public string Broker { get; set; } = "";
    public double? CreateSeconds { get; set; }
    public double TotalSeconds { get; set; }

    public TimingRow Timing(string section, string condition, int partitions, double? gb = null, int? segments = null)
    {
        var row = new TimingRow { Section = section, Condition = condition, Partitions = partitions, DataGb = gb, SegmentsPerPartition = segments };
        Timings.Add(row);
        return row;
    }

    /// <summary>Recovery after SIGKILL of the large data set over the small one: about 1 when recovery depends on the active segments only.</summary>
    public double? RecoveryRatio
    {
        get
        {
            var killed = Timings.Where(t => t.Section == "recovery" && t.Condition.EndsWith("SIGKILL", StringComparison.Ordinal)).ToList();
            return killed.Count == 2 && killed[0].Median is > 0 and var small && killed[1].Median is { } large ? large / small : null;
        }
    }

    /// <summary><see cref="RecoveryRatio"/> in CPU seconds.</summary>
    public double? RecoveryCpuRatio
    {
        get
        {
            var killed = Timings.Where(t => t.Section == "recovery" && t.Condition.EndsWith("SIGKILL", StringComparison.Ordinal)).ToList();
            return killed.Count == 2 && killed[0].MedianCpu is > 0 and var small && killed[1].MedianCpu is { } large ? large / small : null;
        }
    }

    private static string Mb(long kb) => $"{kb / 1024.0:0.0}";

    public string Markdown(FootprintOptions o)
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine($"### Cairn footprint and recovery ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine($"- Machine: {Environment.ProcessorCount} CPUs (nproc), {Bench.CpuModel()}, {Bench.MemoryInfo()}, {RuntimeInformation.OSDescription}, " +
                      $".NET {Environment.Version}; data in {Path.GetTempPath()} ({Bench.FileSystemOf(Path.GetTempPath())}), page cache warm (nothing dropped)");
        sb.AppendLine($"- Load average (1/5/15 min) at start {LoadAtStart}, at end {LoadAtEnd}: other work on the machine skews the figures");
        sb.AppendLine($"- Broker: {Broker} serve on 127.0.0.1 with the admin HTTP server on (as by default), started by the bench; default settings unless stated");
        sb.AppendLine("- Memory: VmRSS (resident now) and VmHWM (peak resident) from /proc/PID/status; idle figures are taken 3 s after the last request");
        sb.AppendLine("- Start-up / recovery: from starting the process to the broker answering ApiVersions and a Metadata request that lists every topic " +
                      $"with all its partitions (clean stop: from SIGTERM to the process exit, before the start of that row); {o.Rounds} restart(s) per figure, median (min-max); CPU s: user + system CPU time the broker used from its start to ready (/proc/PID/stat), less sensitive to other load than the wall clock");
        sb.AppendLine();
        if (Memory.Count > 0)
        {
            double? idle = Memory[0].Sample.RssKb;
            sb.AppendLine("| memory | VmRSS MB | VmHWM MB | x idle RSS | threads | open fds | note |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---|");
            foreach (var m in Memory)
            {
                long rss = m.PeakRssKb ?? m.Sample.RssKb;
                sb.AppendLine($"| {m.Condition} | {Mb(rss)}{(m.PeakRssKb is null ? "" : " (peak)")} | {Mb(m.Sample.HwmKb)} | {rss / idle:0.00} | {m.Sample.Threads} | {m.Sample.OpenFds} | {m.Note} |");
            }
            if (CreateSeconds is { } create) sb.AppendLine($"\nCreating the {o.TotalPartitions:N0} partitions ({o.Topics} topics, 10 per CreateTopics request) took {create:0.0} s.");
            sb.AppendLine();
        }
        foreach (var section in new[] { "start-up", "recovery", "clean stop" })
        {
            var rows = Timings.Where(t => t.Section == section).ToList();
            if (rows.Count == 0) continue;
            double? reference = rows[0].Median;
            double? cpuReference = rows[0].MedianCpu;
            sb.AppendLine($"| {section} | partitions | median s | min-max s | x first row | CPU s (median) | CPU x first row |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var t in rows)
            {
                string ratio = t.Median is { } m && reference is > 0 ? $"{m / reference:0.00}" : "";
                string range = t.Seconds.Count > 0 ? $"{t.Seconds.Min():0.00}-{t.Seconds.Max():0.00}" : "failed";
                string cpu = t.MedianCpu is { } c ? $"{c:0.00}" : "";
                string cpuRatio = t.MedianCpu is { } c2 && cpuReference is > 0 ? $"{c2 / cpuReference:0.00}" : "";
                sb.AppendLine($"| {t.Condition} | {t.Partitions:N0} | {(t.Median is { } med ? $"{med:0.00}" : "")} | {range} | {ratio} | {cpu} | {cpuRatio} |");
            }
            sb.AppendLine();
        }
        if (RecoveryRatio is { } recoveryRatio)
            sb.AppendLine($"Recovery after SIGKILL, large data set / small data set: **{recoveryRatio:0.00}x** wall clock, " +
                          $"{RecoveryCpuRatio:0.00}x CPU time (about 1 when recovery depends on the active segments, not on the total data).\n");
        Bench.AppendFooter(sb, TotalSeconds, Notes, Issues);
        return sb.ToString();
    }

    public string Json(FootprintOptions o)
    {
        var memory = new JsonArray();
        foreach (var m in Memory)
            memory.Add(new JsonObject
            {
                ["condition"] = m.Condition,
                ["vmRssKb"] = m.Sample.RssKb,
                ["peakVmRssKb"] = m.PeakRssKb,
                ["vmHwmKb"] = m.Sample.HwmKb,
                ["threads"] = m.Sample.Threads,
                ["openFds"] = m.Sample.OpenFds,
                ["note"] = m.Note,
            });
        var timings = new JsonArray();
        foreach (var t in Timings)
            timings.Add(new JsonObject
            {
                ["section"] = t.Section,
                ["condition"] = t.Condition,
                ["partitions"] = t.Partitions,
                ["dataGb"] = t.DataGb,
                ["segmentsPerPartition"] = t.SegmentsPerPartition,
                ["medianSeconds"] = t.Median,
                ["medianCpuSeconds"] = t.MedianCpu,
                ["cpuSeconds"] = new JsonArray(t.CpuSeconds.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
                ["seconds"] = new JsonArray(t.Seconds.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
            });
        var root = new JsonObject
        {
            ["mode"] = "footprint",
            ["utc"] = DateTime.UtcNow.ToString("o"),
            ["machine"] = new JsonObject
            {
                ["cpus"] = Environment.ProcessorCount,
                ["cpuModel"] = Bench.CpuModel(),
                ["memory"] = Bench.MemoryInfo(),
                ["os"] = RuntimeInformation.OSDescription,
                ["dotnet"] = Environment.Version.ToString(),
                ["loadAverageAtStart"] = LoadAtStart,
                ["loadAverageAtEnd"] = LoadAtEnd,
            },
            ["broker"] = Broker,
            ["options"] = new JsonObject
            {
                ["topics"] = o.Topics, ["partitionsPerTopic"] = o.Partitions, ["loadSeconds"] = o.LoadSeconds, ["loadMb"] = o.LoadMb,
                ["dataGb"] = o.DataGb, ["smallGb"] = o.SmallGb, ["recoveryPartitions"] = o.RecoveryPartitions, ["segmentMb"] = o.SegmentMb, ["rounds"] = o.Rounds,
            },
            ["createPartitionsSeconds"] = CreateSeconds,
            ["memory"] = memory,
            ["timings"] = timings,
            ["recoveryLargeOverSmall"] = RecoveryRatio,
            ["recoveryCpuLargeOverSmall"] = RecoveryCpuRatio,
            ["issues"] = new JsonArray(Issues.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()),
            ["totalSeconds"] = TotalSeconds,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
