using System.CommandLine;
using System.Text.Json.Nodes;
using Cairn.Admin.Model;
using Cairn.Client;
using Cairn.Protocol;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn topics list | describe | create | alter | delete | trim | offsets</c>.</summary>
internal static class TopicsCommand
{
    public static Command Create()
    {
        var topics = new Command("topics", "List, describe, create, alter and delete topics; trim their records; look up offsets");
        CommonOptions.AddTo(topics);
        topics.Add(List());
        topics.Add(Describe());
        topics.Add(CreateTopic());
        topics.Add(Alter());
        topics.Add(Delete());
        topics.Add(TopicRecords.Trim());
        topics.Add(TopicRecords.Offsets());
        return topics;
    }

    private static Command List()
    {
        var internalTopics = new Option<bool>("--internal") { Description = "Include internal topics (__consumer_offsets, ...)" };
        var pattern = TopicPattern.CreateOption("Only topics whose whole name matches this regular expression");
        var command = new Command("list", "List topics with their partition counts") { internalTopics, pattern };
        command.SetToolAction("topics list", async ctx =>
        {
            var regex = TopicPattern.Compile(ctx.Get(pattern));
            var listed = (await ctx.ProgressAsync("Listing topics", () => ctx.Admin.ListTopicsAsync(ctx.Get(internalTopics), ctx.CancellationToken)))
                .Where(t => regex is null || regex.IsMatch(t.Name)).ToList();
            if (ctx.Json)
            {
                // The document of GET /api/v1/topics: partitions with offsets and sizes (read only here, the tables do not show them).
                var (described, sizes) = await ctx.ProgressAsync("Describing topics", async status =>
                {
                    var d = await ctx.Admin.DescribeTopicsAsync(listed.Select(t => t.Name), includeOffsets: true, ctx.CancellationToken);
                    status("Reading partition sizes");
                    return (d, await ctx.Admin.DescribePartitionSizesAsync(d, ctx.CancellationToken));
                });
                Terminal.WriteDocument(new AdminDocuments.TopicsDto(described.Select(t => TopicDocument(t, sizes, null)).ToList()));
                return 0;
            }
            if (ctx.Output == OutputFormat.Text)
            {
                foreach (var t in listed) Console.Out.WriteLine(t.Name);
                return 0;
            }
            // Topic ids (36 characters) only when they fit beside the names: a wrapped table is harder to read than none.
            var names = listed.Select(t => t.Name + (t.IsInternal ? " (internal)" : "")).ToList();
            bool ids = FitsWidth(ctx.Out, Math.Max(5, names.Select(n => n.Length).DefaultIfEmpty(0).Max()), "PARTITIONS".Length, 36);
            var table = ids ? Terminal.NewTable("TOPIC", "PARTITIONS", "TOPIC ID") : Terminal.NewTable("TOPIC", "PARTITIONS");
            for (int i = 0; i < listed.Count; i++)
            {
                if (ids) table.AddTextRow(names[i], Terminal.Int(listed[i].PartitionCount), listed[i].TopicId.ToString());
                else table.AddTextRow(names[i], Terminal.Int(listed[i].PartitionCount));
            }
            ctx.Out.Write(table);
            if (listed.Count == 0) ctx.Out.Note("(no topics)");
            return 0;
        });
        return command;
    }

    private static Command Describe()
    {
        var names = new Argument<string[]>("topic") { Description = "Topics to describe (none: every topic, or those --pattern matches)", Arity = ArgumentArity.ZeroOrMore };
        var allConfigs = new Option<bool>("--all-configs") { Description = "Show every config, not only the topic's overrides" };
        var internalTopics = new Option<bool>("--internal") { Description = "With no topic named: include internal topics (__consumer_offsets, ...)" };
        var pattern = TopicPattern.CreateOption("Also describe the topics whose whole name matches this regular expression");
        var command = new Command("describe", "Partitions (leader, replicas, log start and end offsets, size on disk) and configs of topics") { names, allConfigs, internalTopics, pattern };
        command.SetToolAction("topics describe", async ctx =>
        {
            var named = ctx.Get(names) ?? [];
            var regex = TopicPattern.Compile(ctx.Get(pattern));
            var (described, configs, sizes) = await ctx.ProgressAsync("Describing topics", async status =>
            {
                var listed = await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken);
                var wanted = TopicPattern.Select(listed, named, regex, ctx.Get(internalTopics));
                if (wanted.Count == 0)
                    return (new List<TopicDescription>(), new Dictionary<ConfigResource, IReadOnlyList<ConfigEntry>>(), new Dictionary<TopicPartition, long>());
                var d = await ctx.Admin.DescribeTopicsAsync(wanted, includeOffsets: true, ctx.CancellationToken);
                status("Reading configs");
                var c = await ctx.Admin.DescribeConfigsAsync(wanted.Select(ConfigResource.Topic), cancellationToken: ctx.CancellationToken);
                status("Reading partition sizes");
                var s = await ctx.Admin.DescribePartitionSizesAsync(d, ctx.CancellationToken);
                return (d.ToList(), c.ToDictionary(), s.ToDictionary());
            });

            IEnumerable<ConfigEntry> Shown(string topic) => configs[ConfigResource.Topic(topic)]
                .Where(e => ctx.Get(allConfigs) || e.Source == ConfigSource.TopicConfig)
                .OrderBy(e => e.Name, StringComparer.Ordinal);

            if (ctx.Json)
            {
                Terminal.WriteDocument(new AdminDocuments.TopicsDto(described.Select(t => TopicDocument(t, sizes,
                    Shown(t.Name).Select(e => new AdminDocuments.ConfigDto(e.Name, e.IsSensitive ? null : e.Value, e.Source.ToString(), e.IsSensitive, e.IsReadOnly)).ToList())).ToList()));
                return 0;
            }

            if (described.Count == 0) ctx.Out.Note("(no topics)");
            foreach (var t in described)
            {
                ctx.Out.Line($"Topic: {t.Name}  partitions: {t.Partitions.Count}{(t.IsInternal ? "  (internal)" : "")}");
                ctx.Out.Line($"  id: {t.TopicId}");
                var table = Terminal.NewTable("PARTITION", "LEADER", "REPLICAS", "ISR", "LOG START", "LOG END", "RECORDS", "SIZE");
                foreach (var p in t.Partitions)
                {
                    var tp = new TopicPartition(t.Name, p.Partition);
                    table.AddTextRow(Terminal.Int(p.Partition), Terminal.Int(p.Leader), string.Join(",", p.Replicas), string.Join(",", p.Isr),
                        Terminal.Int(p.LogStartOffset), Terminal.Int(p.LogEndOffset), Terminal.Int(p.LogEndOffset - p.LogStartOffset),
                        sizes.TryGetValue(tp, out var size) ? Terminal.Bytes(size) : "-");
                }
                ctx.Out.Write(table);
                foreach (var p in t.Partitions)
                    if (OfflineReason(p) is { } reason) ctx.Out.Line($"  Partition {p.Partition} is offline: {reason}");
                var shown = Shown(t.Name).ToList();
                if (shown.Count > 0)
                {
                    var configTable = Terminal.NewTable("CONFIG", "VALUE", "SOURCE");
                    configTable.Columns[1].NoWrap = false; // a long value (a list) wraps; names and sources stay whole
                    foreach (var e in shown) configTable.AddTextRow(e.Name, e.IsSensitive ? "(sensitive)" : e.Value ?? "(null)", SourceName(e.Source));
                    ctx.Out.Write(configTable);
                }
                else ctx.Out.Note("No config overrides (--all-configs shows the defaults).");
                ctx.Out.Line("");
            }
            if (sizes.Count == 0 && described.Any(t => t.Partitions.Count > 0))
                ctx.Out.Note("Sizes are unknown: the brokers did not answer DescribeLogDirs.");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// A described topic as the admin API's document: leaders and replicas from Metadata, offsets from ListOffsets,
    /// sizes from DescribeLogDirs (null where a broker did not answer); segments are not in Kafka's protocol.
    /// </summary>
    private static AdminDocuments.TopicDto TopicDocument(TopicDescription t, IReadOnlyDictionary<TopicPartition, long> sizes, IReadOnlyList<AdminDocuments.ConfigDto>? configs) =>
        AdminDocuments.TopicBody(t.Name, t.TopicId, t.IsInternal, t.Partitions.Select(p => AdminDocuments.PartitionBody(p.Partition, p.Leader, p.Replicas, p.Isr,
            p.LogStartOffset, p.LogEndOffset, sizes.TryGetValue(new TopicPartition(t.Name, p.Partition), out var size) ? size : null, null,
            OfflineReason(p))).ToList(), configs);

    /// <summary>
    /// Why a partition is offline, as far as Kafka's protocol tells: no leader and replicas listed offline (what a broker
    /// answers for a partition whose log it cannot serve). The exact cause is only in the broker's log and its admin API.
    /// </summary>
    private static string? OfflineReason(PartitionDescription p) => p.Leader < 0 && p.OfflineReplicas.Count > 0
        ? $"no leader, replica(s) {string.Join(",", p.OfflineReplicas)} offline (its log cannot be served: reads and writes get KAFKA_STORAGE_ERROR; " +
          "the broker's log, its admin API and 'cairn storage check' on its data directory name the cause)"
        : null;

    private static Command CreateTopic()
    {
        var name = new Argument<string>("topic") { Description = "The new topic's name" };
        var partitions = new Option<int>("--partitions", "-p") { Description = "Number of partitions (default: the broker's default)", DefaultValueFactory = _ => -1 };
        var replication = new Option<short>("--replication-factor", "-r") { Description = "Replicas per partition (default: the broker's default)", DefaultValueFactory = _ => -1 };
        var config = new Option<string[]>("--config", "-c") { Description = "A topic config KEY=VALUE (repeatable), e.g. retention.ms=3600000", AllowMultipleArgumentsPerToken = false };
        var ifNotExists = new Option<bool>("--if-not-exists") { Description = "Succeed when the topic already exists" };
        var validateOnly = new Option<bool>("--validate-only") { Description = "Only ask the broker whether the topic could be created (nothing is created)" };
        var command = new Command("create", "Create a topic") { name, partitions, replication, config, ifNotExists, validateOnly };
        command.SetToolAction("topics create", async ctx =>
        {
            var topic = ctx.Get(name);
            int n = ctx.Get(partitions);
            if (n == 0 || n < -1) throw new UsageException("--partitions must be at least 1");
            short r = ctx.Get(replication);
            if (r == 0 || r < -1) throw new UsageException("--replication-factor must be at least 1");
            var configs = KeyValues.Parse(ctx.Get(config) ?? [], "--config").ToDictionary(kv => kv.Key, kv => (string?)kv.Value);
            CreatedTopic created;
            try
            {
                var request = new NewTopic(topic, n, r) { Configs = configs.Count > 0 ? configs : null };
                created = (await ctx.ProgressAsync(ctx.Get(validateOnly) ? $"Validating {topic}" : $"Creating {topic}",
                    () => ctx.Admin.CreateTopicsAsync([request], ctx.Get(validateOnly), ctx.CancellationToken)))[0];
            }
            catch (KafkaException e) when (e.Error == ErrorCode.TopicAlreadyExists)
            {
                if (!ctx.Get(ifNotExists)) throw new ToolException($"topic '{topic}' already exists");
                if (ctx.Json) Terminal.WriteJson(new JsonObject { ["name"] = topic, ["created"] = false });
                else ctx.Out.Line($"Topic {topic} already exists.");
                return 0;
            }
            if (ctx.Get(validateOnly))
            {
                if (ctx.Json)
                    Terminal.WriteJson(new JsonObject
                    {
                        ["name"] = created.Name, ["created"] = false, ["valid"] = true,
                        ["partitions"] = created.NumPartitions, ["replicationFactor"] = created.ReplicationFactor,
                    });
                else ctx.Out.Line($"Topic {created.Name} can be created ({Count(created.NumPartitions, "partition(s)")}, replication factor {Count(created.ReplicationFactor, "")}); nothing was created (--validate-only).");
                return 0;
            }
            if (ctx.Json)
                Terminal.WriteJson(new JsonObject
                {
                    ["name"] = created.Name, ["created"] = true, ["topicId"] = created.TopicId.ToString(),
                    ["partitions"] = created.NumPartitions, ["replicationFactor"] = created.ReplicationFactor,
                });
            else ctx.Out.Line($"Created topic {created.Name} ({created.NumPartitions} partition(s), replication factor {created.ReplicationFactor}).");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Whether a table whose columns hold at most these many characters fits the console's width unwrapped (each
    /// column takes 3 more for its border and padding, the table 1).
    /// </summary>
    internal static bool FitsWidth(Spectre.Console.IAnsiConsole console, params int[] widths) => widths.Sum() + 3 * widths.Length + 1 <= console.Profile.Width;

    /// <summary>Where a config value comes from, in few words (the enum names run to 26 characters).</summary>
    private static string SourceName(ConfigSource source) => source switch
    {
        ConfigSource.TopicConfig => "topic",
        ConfigSource.DefaultConfig => "default",
        ConfigSource.StaticBrokerConfig => "broker",
        ConfigSource.DynamicBrokerConfig => "broker (dynamic)",
        ConfigSource.DynamicDefaultBrokerConfig => "cluster (dynamic)",
        ConfigSource.GroupConfig => "group",
        _ => source.ToString(),
    };

    /// <summary>"3 partition(s)", or "the broker's default" number for -1 (a broker older than CreateTopics v5 does not tell).</summary>
    private static string Count(int n, string unit) => n >= 0 ? $"{n}{(unit.Length > 0 ? " " + unit : "")}" : $"the broker's default{(unit.Length > 0 ? " " + unit : "")}";

    private static Command Alter()
    {
        var name = new Argument<string>("topic") { Description = "The topic to change" };
        var config = new Option<string[]>("--config", "-c") { Description = "Set a topic config KEY=VALUE (repeatable)", AllowMultipleArgumentsPerToken = false };
        var deleteConfig = new Option<string[]>("--delete-config") { Description = "Remove a config override KEY, back to the default (repeatable)", AllowMultipleArgumentsPerToken = false };
        var partitions = new Option<int?>("--partitions", "-p") { Description = "Raise the partition count to N (it cannot shrink)" };
        var command = new Command("alter", "Change a topic's configs or add partitions") { name, config, deleteConfig, partitions };
        command.SetToolAction("topics alter", async ctx =>
        {
            var topic = ctx.Get(name);
            var sets = KeyValues.Parse(ctx.Get(config) ?? [], "--config");
            var deletes = ctx.Get(deleteConfig) ?? [];
            var count = ctx.Get(partitions);
            if (sets.Count == 0 && deletes.Length == 0 && count is null)
                throw new UsageException("nothing to change: give --config KEY=VALUE, --delete-config KEY or --partitions N");
            if (count is < 1) throw new UsageException("--partitions must be at least 1");
            var changes = new List<string>();
            await ctx.ProgressAsync($"Altering {topic}", async () =>
            {
                var existing = (await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken)).FirstOrDefault(t => t.Name == topic)
                    ?? throw new ToolException($"topic '{topic}' does not exist");
                if (count is { } c)
                {
                    if (c < existing.PartitionCount) throw new ToolException($"topic '{topic}' has {existing.PartitionCount} partitions; partitions can be added, but they cannot be removed");
                    if (c > existing.PartitionCount)
                    {
                        await ctx.Admin.CreatePartitionsAsync(topic, c, ctx.CancellationToken);
                        changes.Add($"partitions {existing.PartitionCount} -> {c}");
                    }
                    else changes.Add($"partitions unchanged ({c})");
                }
                var alterations = sets.Select(kv => ConfigAlteration.Set(kv.Key, kv.Value)).Concat(deletes.Select(ConfigAlteration.Delete)).ToList();
                if (alterations.Count > 0)
                {
                    await ctx.Admin.AlterConfigsAsync(ConfigResource.Topic(topic), alterations, ctx.CancellationToken);
                    changes.AddRange(sets.Select(kv => $"{kv.Key}={kv.Value}"));
                    changes.AddRange(deletes.Select(d => $"{d} reset to default"));
                }
                return 0;
            });
            if (ctx.Json) Terminal.WriteJson(new JsonObject { ["name"] = topic, ["changes"] = new JsonArray(changes.Select(c => (JsonNode)c).ToArray()) });
            else ctx.Out.Line($"Altered topic {topic}: {string.Join("; ", changes)}.");
            return 0;
        });
        return command;
    }

    private static Command Delete()
    {
        var names = new Argument<string[]>("topic") { Description = "Topics to delete", Arity = ArgumentArity.ZeroOrMore };
        var ifExists = new Option<bool>("--if-exists") { Description = "Succeed when a topic does not exist (or --pattern matches none)" };
        var pattern = TopicPattern.CreateOption("Also delete the topics whose whole name matches this regular expression (never internal topics)");
        var dryRun = new Option<bool>("--dry-run") { Description = "Only list the topics that would be deleted" };
        var command = new Command("delete", "Delete topics and their records") { names, ifExists, pattern, dryRun };
        command.SetToolAction("topics delete", async ctx =>
        {
            var named = ctx.Get(names) ?? [];
            var regex = TopicPattern.Compile(ctx.Get(pattern));
            if (named.Length == 0 && regex is null) throw new UsageException("name the topics to delete, or give --pattern REGEX");
            bool dry = ctx.Get(dryRun);
            var deleted = await ctx.ProgressAsync("Deleting topics", async () =>
            {
                var listed = await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken);
                var present = TopicPattern.Select(listed, named, regex, includeInternal: false, ignoreMissing: ctx.Get(ifExists));
                if (!dry) await ctx.Admin.DeleteTopicsAsync(present, ctx.CancellationToken);
                return present;
            });
            if (ctx.Json) Terminal.WriteJson(new JsonObject { [dry ? "wouldDelete" : "deleted"] = new JsonArray(deleted.Select(d => (JsonNode)d).ToArray()) });
            else if (deleted.Count == 0) ctx.Out.Line("Nothing deleted.");
            else if (dry) ctx.Out.Line($"Would delete topic{(deleted.Count == 1 ? "" : "s")} {string.Join(", ", deleted)} (--dry-run: nothing deleted).");
            else ctx.Out.Line($"Deleted topic{(deleted.Count == 1 ? "" : "s")} {string.Join(", ", deleted)}.");
            return 0;
        });
        return command;
    }
}

/// <summary>KEY=VALUE arguments (configs, headers).</summary>
internal static class KeyValues
{
    public static List<KeyValuePair<string, string>> Parse(IEnumerable<string> items, string option)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var item in items)
        {
            int eq = item.IndexOf('=');
            if (eq <= 0) throw new UsageException($"{option} expects KEY=VALUE, got '{item}'");
            result.Add(new(item[..eq], item[(eq + 1)..]));
        }
        return result;
    }
}
