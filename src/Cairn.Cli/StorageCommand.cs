using System.CommandLine;
using System.Text.Json;
using Cairn.Storage;

namespace Cairn.Cli;

/// <summary>
/// <c>cairn storage check|repair</c>: offline tools for a stopped broker's data directory. The work is in Cairn.Storage
/// (<see cref="StorageCheck"/>, <see cref="StorageRepair"/>); this file parses, takes the directory's lock and prints.
/// Exit codes: 0 healthy / repaired, 1 problems found / a repair refused / the directory in use, 2 usage.
/// </summary>
internal static class StorageCommand
{
    private const int Ok = 0, Problems = 1, Usage = 2;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create()
    {
        var storage = new Command("storage", "Check or repair a stopped broker's data directory (refused while a broker runs on it)");
        storage.Add(Check());
        storage.Add(Repair());
        return storage;
    }

    private static Option<string?> DataDirOption() =>
        new("--data-dir") { Description = "The broker's data directory (default: CAIRN_DATA_DIR, else ./cairn-data)", HelpName = "dir" };

    private static Option<bool> JsonOption() => new("--json") { Description = "Print the result as one JSON document" };

    private static string DataDir(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) ?? (Environment.GetEnvironmentVariable("CAIRN_DATA_DIR") is { Length: > 0 } env ? env : "./cairn-data");

    private static Command Check()
    {
        var dataDir = DataDirOption();
        var json = JsonOption();
        var command = new Command("check",
            "Read every topic file, partition directory and segment (batches and CRCs) and report gaps, damaged or unreadable files, " +
            "offline partitions and directories Cairn did not create; changes nothing. Exit code 0 when healthy, 1 with problems")
        { dataDir, json };
        command.SetAction(parse => Run(parse, "check", () =>
        {
            var dir = DataDir(parse, dataDir);
            StorageReport report;
            using (DataDirectoryLock.Acquire(dir)) report = StorageCheck.Run(dir);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) output.WriteLine(JsonSerializer.Serialize(new { healthy = report.Healthy, report }, Json));
            else PrintCheck(output, report);
            return report.Healthy ? Ok : Problems;
        }));
        return command;
    }

    private static void PrintCheck(TextWriter output, StorageReport report)
    {
        output.WriteLine($"Data directory {report.DataDirectory}: {report.Partitions.Count} partition(s)");
        foreach (var p in report.Partitions)
        {
            string state = p.Offline ? "OFFLINE" : p.Healthy ? "ok" : "DAMAGED";
            output.WriteLine($"  {p.Topic}-{p.Partition}: {state}, {p.Segments.Count} segment(s), log start {Show(p.LogStartOffset)}, log end {Show(p.LogEndOffset)}" +
                (p.Offline ? $", consistent up to {Show(p.ConsistentEndOffset)}" : ""));
            foreach (var s in p.Segments)
                output.WriteLine($"    segment {s.BaseOffset}: offsets {s.BaseOffset}..{s.NextOffset - 1}, {s.SizeBytes} bytes" +
                    (s.ValidBytes < s.SizeBytes ? $" ({s.SizeBytes - s.ValidBytes} unreadable)" : ""));
        }
        foreach (var f in report.DamagedTopicFiles)
            output.WriteLine($"problem: {f}: damaged topic metadata file (the broker moves it aside and rebuilds the topic from its partition directories)");
        foreach (var line in report.Problems.Concat(report.Partitions.SelectMany(p => p.Problems))) output.WriteLine("problem: " + line);
        foreach (var line in report.Notes.Concat(report.Partitions.SelectMany(p => p.Notes))) output.WriteLine("note: " + line);
        int offline = report.OfflinePartitions.Count();
        output.WriteLine(report.Healthy ? "Healthy." : $"Problems found; {offline} partition(s) offline.");
    }

    private static Command Repair()
    {
        var dataDir = DataDirOption();
        var json = JsonOption();
        var truncateAtGap = new Option<bool>("--truncate-at-gap")
        {
            Description = "Keep each offline partition's segments before its first gap and move the later segments and their indexes " +
                "into <partition>/.truncated-<ms>/ (nothing is deleted)",
        };
        var topic = new Option<string?>("--topic") { Description = "Repair only this topic's partitions" };
        var partition = new Option<int?>("--partition") { Description = "With --topic: repair only this partition" };
        var command = new Command("repair", "Repair a stopped broker's offline partitions, only in the way asked for") { dataDir, truncateAtGap, topic, partition, json };
        command.SetAction(parse => Run(parse, "repair", () =>
        {
            if (!parse.GetValue(truncateAtGap)) throw new ArgumentException("say how to repair: --truncate-at-gap (the only repair there is)");
            if (parse.GetValue(partition) is not null && parse.GetValue(topic) is null) throw new ArgumentException("--partition needs --topic");
            if (parse.GetValue(partition) is < 0) throw new ArgumentException("--partition must not be negative");
            var dir = DataDir(parse, dataDir);
            IReadOnlyList<PartitionRepair> repairs;
            using (DataDirectoryLock.Acquire(dir))
                repairs = StorageRepair.TruncateAtGap(dir, parse.GetValue(topic), parse.GetValue(partition), DateTimeOffset.UtcNow);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json)) output.WriteLine(JsonSerializer.Serialize(new { repairs }, Json));
            else PrintRepairs(output, repairs);
            return repairs.Any(r => r.Refused is not null) ? Problems : Ok;
        }));
        return command;
    }

    private static void PrintRepairs(TextWriter output, IReadOnlyList<PartitionRepair> repairs)
    {
        if (repairs.Count == 0) output.WriteLine("Nothing to repair: no partition asked for has a gap.");
        foreach (var r in repairs)
        {
            var name = $"{r.Topic}-{r.Partition}";
            if (r.Refused is not null)
            {
                output.WriteLine($"{name}: not repaired: {r.Refused}");
                continue;
            }
            output.WriteLine($"{name}: moved {r.Moved.Count} file(s) into {r.AsideDirectory}:");
            foreach (var m in r.Moved) output.WriteLine($"  {m.From} -> {m.To} ({m.Bytes} bytes)");
            output.WriteLine($"{name}: log end offset {Show(r.OldLogEndOffset)} -> {Show(r.NewLogEndOffset)}; the broker brings it online at its next start");
        }
    }

    private static string Show(long? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";

    /// <summary>Turns the failures an offline tool meets into one line on stderr and an exit code.</summary>
    private static int Run(ParseResult parse, string name, Func<int> action)
    {
        var error = parse.InvocationConfiguration.Error;
        try
        {
            return action();
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"cairn storage {name}: {e.Message}");
            return Usage;
        }
        catch (DirectoryNotFoundException e)
        {
            error.WriteLine($"cairn storage {name}: {e.Message}");
            return Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // DataDirectoryInUseException among them: the broker is running.
            error.WriteLine($"cairn storage {name}: {e.Message}");
            return Problems;
        }
    }
}
