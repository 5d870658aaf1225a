using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary>
/// <c>cairn topics trim</c> (DeleteRecords, like kafka-delete-records.sh) and <c>cairn topics offsets</c> (ListOffsets,
/// like <c>kcat -Q</c> and kafka-get-offsets.sh): the commands about a topic's records rather than its settings.
/// </summary>
internal static class TopicRecords
{
    public static Command Trim()
    {
        var targets = new Argument<string[]>("topic[:partition]") { Description = "Partitions to trim: TOPIC:PARTITION, or TOPIC for all its partitions", Arity = ArgumentArity.OneOrMore };
        var before = new Option<string>("--before")
        {
            Description = "Delete the records before this offset; 'end' (or -1) deletes every record up to the log end",
            HelpName = "offset",
            Required = true,
        };
        var command = new Command("trim", "Delete the oldest records of partitions (DeleteRecords) and print each partition's new log start") { targets, before };
        command.SetToolAction("topics trim", async ctx =>
        {
            long offset = ParseBefore(ctx.Get(before));
            var partitions = await ctx.ProgressAsync("Trimming", async () =>
            {
                var resolved = await ResolveAsync(ctx, ctx.Get(targets));
                try
                {
                    return await ctx.Admin.DeleteRecordsAsync(resolved.ToDictionary(tp => tp, _ => offset), ctx.CancellationToken);
                }
                catch (KafkaOperationException e) when (e.Failures.Values.All(f => f.Error == Protocol.ErrorCode.OffsetOutOfRange))
                {
                    throw new ToolException($"--before {offset} is past the log end of {string.Join(", ", e.Failures.Keys.Order(StringComparer.Ordinal))} " +
                        "(see 'cairn topics offsets'); nothing was deleted there");
                }
            });
            var sorted = partitions.OrderBy(p => p.Key.Topic, StringComparer.Ordinal).ThenBy(p => p.Key.Partition).ToList();
            if (ctx.Json)
            {
                Terminal.WriteJson(new JsonObject
                {
                    ["partitions"] = new JsonArray(sorted.Select(p => (JsonNode)new JsonObject
                    {
                        ["topic"] = p.Key.Topic, ["partition"] = p.Key.Partition, ["logStartOffset"] = p.Value,
                    }).ToArray()),
                });
                return 0;
            }
            WriteByPartition(ctx, ["LOG START"], sorted.Select(p => (p.Key, new[] { Terminal.Int(p.Value) })));
            return 0;
        });
        return command;
    }

    public static Command Offsets()
    {
        var targets = new Argument<string[]>("topic[:partition]") { Description = "TOPIC (all its partitions) or TOPIC:PARTITION", Arity = ArgumentArity.OneOrMore };
        var time = new Option<string>("--time")
        {
            Description = "-1 or latest (the log end; the default), -2 or earliest (the log start), milliseconds since the epoch, " +
                "or an ISO-8601 time: without a zone it is local time, with Z or +hh:mm it is honoured",
            HelpName = "time",
            DefaultValueFactory = _ => "-1",
        };
        var command = new Command("offsets", "The offset of each partition at a time (ListOffsets): the log end, the log start, or the first record at or after a time") { targets, time };
        command.SetToolAction("topics offsets", async ctx =>
        {
            var spec = OffsetTime.Parse(ctx.Get(time), "--time", TimeZoneInfo.Local);
            var found = await ctx.ProgressAsync("Looking up offsets", async () =>
            {
                var resolved = await ResolveAsync(ctx, ctx.Get(targets));
                return await ctx.Admin.ListOffsetsAsync(resolved, spec, cancellationToken: ctx.CancellationToken);
            });
            var sorted = found.OrderBy(p => p.Key.Topic, StringComparer.Ordinal).ThenBy(p => p.Key.Partition).ToList();
            if (ctx.Json)
            {
                Terminal.WriteJson(new JsonObject
                {
                    ["time"] = spec == OffsetSpec.Latest ? "latest" : spec == OffsetSpec.Earliest ? "earliest"
                        : DateTimeOffset.FromUnixTimeMilliseconds(spec.Value).ToString("O", CultureInfo.InvariantCulture),
                    ["partitions"] = new JsonArray(sorted.Select(p => (JsonNode)new JsonObject
                    {
                        ["topic"] = p.Key.Topic,
                        ["partition"] = p.Key.Partition,
                        ["offset"] = p.Value.Offset >= 0 ? p.Value.Offset : null,
                        ["timestamp"] = p.Value.Timestamp?.ToString("O", CultureInfo.InvariantCulture),
                    }).ToArray()),
                });
                return 0;
            }
            if (ctx.Output == OutputFormat.Text)
            {
                // kafka-get-offsets.sh's format: TOPIC:PARTITION:OFFSET.
                foreach (var (tp, r) in sorted) Console.Out.WriteLine($"{tp.Topic}:{tp.Partition}:{(r.Offset >= 0 ? Terminal.Int(r.Offset) : "")}");
                return 0;
            }
            // Local time to the second, to fit 80 columns; --output json has the exact instant.
            WriteByPartition(ctx, ["OFFSET", "TIMESTAMP"], sorted.Select(p => (p.Key, new[]
            {
                p.Value.Offset >= 0 ? Terminal.Int(p.Value.Offset) : "-",
                p.Value.Timestamp?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-",
            })));
            if (sorted.Any(p => p.Value.Offset < 0)) ctx.Out.Note("-: no record at or after that time.");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// One row per partition: a TOPIC and a PARTITION column before <paramref name="headers"/>, or, when long topic
    /// names would not leave the table room on the terminal, a "Topic: NAME" line and a table per topic.
    /// </summary>
    private static void WriteByPartition(ToolContext ctx, string[] headers, IEnumerable<(TopicPartition Partition, string[] Cells)> rows)
    {
        var list = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, list.Select(r => r.Cells[i].Length).DefaultIfEmpty(0).Max())).ToList();
        int topicWidth = Math.Max("TOPIC".Length, list.Select(r => r.Partition.Topic.Length).DefaultIfEmpty(0).Max());
        if (TopicsCommand.FitsWidth(ctx.Out, [topicWidth, "PARTITION".Length, .. widths]))
        {
            var table = Terminal.NewTable(["TOPIC", "PARTITION", .. headers]);
            foreach (var (tp, cells) in list) table.AddTextRow([tp.Topic, Terminal.Int(tp.Partition), .. cells]);
            ctx.Out.Write(table);
            return;
        }
        foreach (var topic in list.GroupBy(r => r.Partition.Topic))
        {
            ctx.Out.Line($"Topic: {topic.Key}");
            var table = Terminal.NewTable(["PARTITION", .. headers]);
            foreach (var (tp, cells) in topic) table.AddTextRow([Terminal.Int(tp.Partition), .. cells]);
            ctx.Out.Write(table);
        }
    }

    private static long ParseBefore(string value)
    {
        if (value is "end" or "-1") return -1;
        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long offset)) return offset;
        throw new UsageException($"--before: '{value}' is not an offset (a whole number, or 'end')");
    }

    /// <summary>TOPIC:PARTITION and TOPIC arguments as partitions; the topics and partitions must exist.</summary>
    private static async Task<List<TopicPartition>> ResolveAsync(ToolContext ctx, IEnumerable<string> targets)
    {
        var parsed = targets.Select(ParseTarget).ToList();
        var topics = parsed.Select(p => p.Topic).Distinct(StringComparer.Ordinal).ToList();
        var listed = await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken);
        var counts = TopicPattern.Select(listed, topics, null, includeInternal: true)
            .ToDictionary(n => n, n => listed.First(t => t.Name == n).PartitionCount, StringComparer.Ordinal);
        var result = new List<TopicPartition>();
        foreach (var (topic, partition) in parsed)
        {
            if (partition is { } p)
            {
                if (p >= counts[topic]) throw new ToolException($"topic '{topic}' has no partition {p} (it has {counts[topic]})");
                result.Add(new TopicPartition(topic, p));
            }
            else result.AddRange(Enumerable.Range(0, counts[topic]).Select(i => new TopicPartition(topic, i)));
        }
        return result.Distinct().ToList();
    }

    /// <summary>"orders:3" is partition 3 of orders; "orders" is all of them. Topic names cannot contain ':'.</summary>
    internal static (string Topic, int? Partition) ParseTarget(string target)
    {
        int colon = target.LastIndexOf(':');
        if (colon < 0) return (target.Length > 0 ? target : throw new UsageException("an empty topic name"), null);
        if (colon == 0 || !int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int partition))
            throw new UsageException($"'{target}' is not TOPIC or TOPIC:PARTITION");
        return (target[..colon], partition);
    }
}

/// <summary>
/// Times as Kafka's tools take them: -1 latest, -2 earliest, milliseconds since the epoch, or ISO-8601. An ISO time
/// without a zone is local time (kafka-consumer-groups.sh --to-datetime, kcat); Z or an offset is honoured.
/// </summary>
internal static partial class OffsetTime
{
    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,7})?)?)?(?<zone>Z|[+-]\d{2}(?::?\d{2})?)?$", RegexOptions.IgnoreCase)]
    private static partial Regex Iso();

    public static OffsetSpec Parse(string value, string option, TimeZoneInfo localZone)
    {
        var v = value.Trim();
        switch (v.ToLowerInvariant())
        {
            case "-1" or "latest" or "end": return OffsetSpec.Latest;
            case "-2" or "earliest" or "beginning": return OffsetSpec.Earliest;
        }
        if (long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long millis))
            return OffsetSpec.ForTimestamp(DateTimeOffset.FromUnixTimeMilliseconds(Math.Min(millis, DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())));
        var m = Iso().Match(v);
        if (m.Success)
        {
            var text = v.Replace(',', '.').Replace(' ', 'T');
            if (m.Groups["zone"].Success && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var zoned))
                return Checked(zoned, value, option);
            if (!m.Groups["zone"].Success && DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
            {
                local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
                // A local time skipped by a daylight-saving jump has no offset of its own: the one before the jump is used.
                var offset = localZone.IsInvalidTime(local) ? localZone.GetUtcOffset(local.AddHours(-2)) : localZone.GetUtcOffset(local);
                return Checked(new DateTimeOffset(local, offset), value, option);
            }
        }
        throw new UsageException($"{option}: '{value}' is not a time: give -1 (latest), -2 (earliest), milliseconds since the epoch, " +
            "or ISO-8601 such as 2026-01-31T14:00:00 (local time) or 2026-01-31T13:00:00Z");
    }

    private static OffsetSpec Checked(DateTimeOffset time, string value, string option) =>
        time.ToUnixTimeMilliseconds() >= 0 ? OffsetSpec.ForTimestamp(time) : throw new UsageException($"{option}: '{value}' is before 1970");
}
