using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Cairn.Bench.RealClient;

/// <summary>Where and under which conditions a run happened: printed above the tables and kept in the JSON.</summary>
internal sealed class RunHeader
{
    public string StartedUtc { get; init; } = "";
    public string Machine { get; init; } = "";
    public string LoadAtStart { get; init; } = "";
    public string LoadAtEnd { get; private set; } = "";
    public string Commit { get; init; } = "";
    public string Librdkafka { get; set; } = "";
    public string Conditions { get; init; } = "";
    public string CommandLine { get; init; } = "";
    public double TotalSeconds { get; private set; }

    public static RunHeader Capture(RealClientOptions o) => new()
    {
        StartedUtc = $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC",
        Machine = $"{Environment.ProcessorCount} CPUs (nproc), {Bench.CpuModel()}, {Bench.MemoryInfo()}, {RuntimeInformation.OSDescription}, .NET {Environment.Version}; " +
                  $"data in {Path.GetTempPath()} ({Bench.FileSystemOf(Path.GetTempPath())})",
        LoadAtStart = Bench.LoadAverage(),
        Commit = GitDescribe(),
        Conditions = $"{o.Rounds} round(s); each phase bounded by {o.Seconds:0} s and {o.MaxRecords:#,0} records; producers: linger.ms 5, batch.size 1000000, " +
                     "message.max.bytes 2000000, queue.buffering.max.kbytes 65536, socket.nagle.disable true, no compression, no idempotence; " +
                     $"latency phases rate-limited to half of Cairn's maximum for the configuration in the same round (paced per millisecond; " +
                     "the idle-connection phases to a twentieth of the acks=1 1-partition maximum), " +
                     $"linger.ms {o.LatencyLingerMs("1")} for acks=1 and {o.LatencyLingerMs("all")} for acks=all",
        CommandLine = "dotnet run -c Release --project bench/Cairn.Bench -- " + string.Join(' ', o.Arguments),
    };

    public void Finish(TimeSpan total)
    {
        LoadAtEnd = Bench.LoadAverage();
        TotalSeconds = Math.Round(total.TotalSeconds);
    }

    private static string GitDescribe()
    {
        var root = Bench.FindRepoRoot();
        if (root is null) return "unknown (not run from a checkout)";
        try
        {
            using var p = Process.Start(new ProcessStartInfo("git", ["describe", "--always", "--dirty", "--tags"])
            {
                WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true,
            })!;
            string text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit(10_000);
            return p.ExitCode == 0 && text.Length > 0 ? text : "unknown";
        }
        catch (System.ComponentModel.Win32Exception) { return "unknown (no git)"; }
    }
}

/// <summary>
/// Aggregates the phases over rounds: throughput is the median over rounds and the ratio the median of per-round
/// ratios (subject / baseline, measured back to back); latency percentiles come from the rounds' histograms pooled.
/// </summary>
internal sealed class RealClientReport(RunHeader header, List<PhaseRecord> records, List<string> issues, List<string> notes)
{
    internal sealed record Side(int Rounds, double? RecordsPerSecond, double? MBps, double? P50Ms, double? P99Ms, double? P999Ms);

    internal sealed record Row(string Kind, string Config, string SubjectTarget, string BaselineTarget, double? RateLimit,
        Side Subject, Side Baseline, double? Ratio, double? P99Ratio, int SaturatedRounds, int Rounds);

    /// <summary>A rate-limited phase that achieved less than 90 % of its offered load measured queueing, not latency.</summary>
    private static bool Saturated(PhaseRecord p) => p.RateLimit is { } offered && p.Error is null && p.RecordsPerSecond < 0.9 * offered;

    private List<Row> Rows()
    {
        var rows = new List<Row>();
        foreach (var g in records.GroupBy(r => (r.Kind, r.Config)))
        {
            var subject = g.Where(r => r.Role == RealClientBench.Subject).ToList();
            var baseline = g.Where(r => r.Role == RealClientBench.Baseline).ToList();
            var ratios = subject.Where(s => s.Error is null)
                .Select(s => baseline.FirstOrDefault(b => b.Round == s.Round && b.Error is null && b.RecordsPerSecond > 0) is { } b ? s.RecordsPerSecond / b.RecordsPerSecond : (double?)null)
                .Where(x => x is not null).Select(x => x!.Value);
            // Latency percentiles pool the rounds in which neither side saturated (all rounds when every one did).
            var saturated = g.Where(Saturated).Select(r => r.Round).ToHashSet();
            int rounds = g.Select(r => r.Round).Distinct().Count();
            bool Keep(PhaseRecord r) => saturated.Count == rounds || !saturated.Contains(r.Round);
            var (s, b) = (Summarize(subject.Where(Keep).ToList()), Summarize(baseline.Where(Keep).ToList()));
            rows.Add(new Row(g.Key.Kind, g.Key.Config, subject.FirstOrDefault()?.Target ?? "", baseline.FirstOrDefault()?.Target ?? "",
                Bench.Median(g.Where(r => r.RateLimit is not null && Keep(r)).Select(r => r.RateLimit!.Value)), s, b,
                Bench.Median(ratios), s.P99Ms is { } sp && b.P99Ms is { } bp && bp > 0 ? sp / bp : null, saturated.Count, rounds));
        }
        return rows;
    }

    private static Side Summarize(List<PhaseRecord> phases)
    {
        var ok = phases.Where(p => p.Error is null).ToList();
        var pooled = new LatencyHistogram();
        foreach (var p in ok) if (p.Latency is { } h) pooled.Add(h);
        return new Side(ok.Count, Bench.Median(ok.Select(p => p.RecordsPerSecond)), Bench.Median(ok.Select(p => p.MBps)),
            pooled.PercentileMs(0.5), pooled.PercentileMs(0.99), pooled.PercentileMs(0.999));
    }

    public string Markdown()
    {
        var rows = Rows();
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine($"### Cairn with a real client: Confluent.Kafka 1.9.3 over librdkafka {header.Librdkafka} ({header.StartedUtc})");
        sb.AppendLine();
        sb.AppendLine($"- Machine: {header.Machine}");
        sb.AppendLine($"- Load average (1/5/15 min) at start {header.LoadAtStart}, at end {header.LoadAtEnd}; baseline and Cairn phases alternate so both see the same machine state");
        sb.AppendLine($"- Commit: {header.Commit}; broker: `cairn serve` started by the bench (temporary data dir, log.flush.on.ack=true: acks=all is fsynced before the ack, acks=1 stays in the page cache)");
        sb.AppendLine($"- Baselines: the in-process null broker (answers ApiVersions/Metadata/Produce/Fetch and consumer-group requests, stores nothing, fetch replays one cached ~1 MB batch), driven by the same client in the same round; for acks=all it appends each batch to a file and fsyncs before each ack; for acks=1 also as a TCP->file sink (appends each batch to a file, no fsync), the disk path's limit");
        sb.AppendLine($"- Conditions: {header.Conditions}");
        sb.AppendLine($"- Command: `{header.CommandLine}`");
        sb.AppendLine();

        Throughput(sb, "Produce (records/s = delivery reports; ratio = Cairn / null broker, median of per-round ratios)", rows.Where(r => r.Kind == "produce"));
        Throughput(sb, "Produce acks=1 against the disk path (ratio = Cairn / a TCP->file sink: the null broker appending every batch to a file, no fsync, same client, same round)",
            rows.Where(r => r.Kind == "disk"), "TCP->file sink");
        Throughput(sb, "Consume (records/s read by one consumer group per line; the clock starts once every member holds partitions)", rows.Where(r => r.Kind == "consume"));
        Latency(sb, "Produce latency, Produce() to delivery report, at half of Cairn's maximum (pooled over rounds)", rows.Where(r => r.Kind == "latency"), "null broker");
        Latency(sb, "Idle connections: the same producers with and without idle connections open (target p99 ratio < 2)", rows.Where(r => r.Kind == "idle"), "no idle connections");
        Scaling(sb, rows);

        Bench.AppendFooter(sb, header.TotalSeconds, notes, issues);
        return sb.ToString();
    }

    private static void Throughput(StringBuilder sb, string title, IEnumerable<Row> rows, string baseline = "null broker")
    {
        var list = rows.ToList();
        if (list.Count == 0) return;
        sb.AppendLine($"#### {title}");
        sb.AppendLine();
        sb.AppendLine($"| configuration | Cairn records/s | Cairn MB/s | {baseline} records/s | {baseline} MB/s | ratio |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in list)
            sb.AppendLine($"| {r.Config} | {N(r.Subject.RecordsPerSecond)} | {M(r.Subject.MBps)} | {N(r.Baseline.RecordsPerSecond)} | {M(r.Baseline.MBps)} | {X(r.Ratio)} |");
        sb.AppendLine();
    }

    private static void Latency(StringBuilder sb, string title, IEnumerable<Row> rows, string baselineName)
    {
        var list = rows.ToList();
        if (list.Count == 0) return;
        sb.AppendLine($"#### {title}");
        sb.AppendLine();
        sb.AppendLine($"| configuration | records/s offered, median over rounds (achieved: Cairn / {baselineName}) | p50 ms | p99 ms | p99.9 ms | {baselineName}: p50 / p99 / p99.9 ms | p99 ratio |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in list)
        {
            // Latency at an offered load the target cannot sustain is queueing, not latency: say so.
            string saturated = r.SaturatedRounds == 0 ? ""
                : r.SaturatedRounds == r.Rounds ? " SATURATED in every round"
                : $" ({r.SaturatedRounds} of {r.Rounds} rounds saturated, left out)";
            sb.AppendLine($"| {r.Config} | {N(r.RateLimit)} ({N(r.Subject.RecordsPerSecond)} / {N(r.Baseline.RecordsPerSecond)}){saturated} | {Bench.Ms(r.Subject.P50Ms)} | {Bench.Ms(r.Subject.P99Ms)} | {Bench.Ms(r.Subject.P999Ms)} | " +
                          $"{Bench.Ms(r.Baseline.P50Ms)} / {Bench.Ms(r.Baseline.P99Ms)} / {Bench.Ms(r.Baseline.P999Ms)} | {X(r.P99Ratio)} |");
        }
        sb.AppendLine();
    }

    /// <summary>Cairn against itself: 16 partitions x 4 (producers or group members) next to 1 partition x 1.</summary>
    private static void Scaling(StringBuilder sb, List<Row> rows)
    {
        var lines = new List<string>();
        foreach (var kind in new[] { "produce", "consume" })
        {
            var ofKind = rows.Where(r => r.Kind == kind).ToList();
            foreach (var wide in ofKind.Where(r => r.Config.Contains("16 partitions") && (r.Config.Contains("4 producers") || r.Config.Contains("4-member"))))
            {
                string narrowConfig = kind == "produce"
                    ? wide.Config.Replace("16 partitions, 4 producers", "1 partition, 1 producer")
                    : wide.Config.Replace("16 partitions, 4-member group", "1 partition, 1 consumer");
                var narrow = ofKind.FirstOrDefault(r => r.Config == narrowConfig);
                if (narrow?.Subject.RecordsPerSecond is not { } n || wide.Subject.RecordsPerSecond is not { } w || n <= 0) continue;
                double ratio = w / n;
                lines.Add($"- {kind} {wide.Config} / {narrowConfig}: {ratio:0.00}x on Cairn{(Math.Round(ratio, 2) >= 1 ? "" : " (LOWER than 1 partition)")}" +
                          (narrow.Baseline.RecordsPerSecond is { } nb && wide.Baseline.RecordsPerSecond is { } wb && nb > 0 ? $", {wb / nb:0.00}x on the null broker" : ""));
            }
        }
        if (lines.Count == 0) return;
        sb.AppendLine("#### Scaling (16 partitions x 4 against 1 partition x 1, medians; target >= 1)");
        sb.AppendLine();
        foreach (var l in lines) sb.AppendLine(l);
        sb.AppendLine();
    }

    public string Json() => JsonSerializer.Serialize(new
    {
        header,
        rows = Rows(),
        phases = records,
        notes,
        issues,
    }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });

    private static string N(double? v) => v is { } x ? $"{x:#,0}" : "";
    private static string M(double? v) => v is { } x ? $"{x:0.0}" : "";
    private static string X(double? v) => v is { } x ? $"{x:0.00}" : "";
}
