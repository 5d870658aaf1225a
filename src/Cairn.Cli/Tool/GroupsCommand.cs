using System.CommandLine;
using System.Text.Json.Nodes;
using Cairn.Broker.Admin;
using Cairn.Client;
using Cairn.Protocol;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn groups list | describe | delete | delete-offsets | reset-offsets</c>.</summary>
internal static class GroupsCommand
{
    public static Command Create()
    {
        var groups = new Command("groups", "List, describe and delete consumer groups; delete and reset their offsets");
        CommonOptions.AddTo(groups);
        groups.Add(List());
        groups.Add(Describe());
        groups.Add(Delete());
        groups.Add(DeleteOffsets());
        groups.Add(ResetOffsets());
        return groups;
    }

    private static Command List()
    {
        var state = new Option<string[]>("--state") { Description = "Only groups in this state (repeatable): Empty, Stable, PreparingRebalance, CompletingRebalance, Dead", AllowMultipleArgumentsPerToken = false };
        var command = new Command("list", "List consumer groups") { state };
        command.SetToolAction("groups list", async ctx =>
        {
            var states = ctx.Get(state) ?? [];
            var listed = await ctx.ProgressAsync("Listing groups", () => ctx.Admin.ListGroupsAsync(states.Length > 0 ? states : null, ctx.CancellationToken));
            // Brokers too old to filter by state list everything: filter here too, where the state is known.
            if (states.Length > 0) listed = listed.Where(g => g.State is null || states.Contains(g.State, StringComparer.OrdinalIgnoreCase)).ToList();
            if (ctx.Json)
            {
                Terminal.WriteJson(new JsonObject
                {
                    ["groups"] = new JsonArray(listed.Select(g => (JsonNode)new JsonObject
                    {
                        ["groupId"] = g.GroupId, ["state"] = g.State, ["protocolType"] = g.ProtocolType, ["type"] = g.Type,
                    }).ToArray()),
                });
                return 0;
            }
            if (ctx.Output == OutputFormat.Text)
            {
                foreach (var g in listed) Console.Out.WriteLine(g.GroupId);
                return 0;
            }
            var table = Terminal.NewTable("GROUP", "STATE", "PROTOCOL TYPE");
            foreach (var g in listed) table.AddTextRow(g.GroupId, g.State ?? "?", g.ProtocolType.Length > 0 ? g.ProtocolType : "-");
            ctx.Out.Write(table);
            if (listed.Count == 0) ctx.Out.Note("(no groups)");
            return 0;
        });
        return command;
    }

    /// <summary>One partition of a group's description.</summary>
    private sealed record PartitionLagRow(TopicPartition Tp, long? Committed, string? Metadata, long? LogStart, long? LogEnd, long? Lag,
        DateTimeOffset? CommittedRecordTimestamp, double? LagSeconds, GroupMemberDescription? Owner);

    private sealed record GroupReport(GroupDescription Group, IReadOnlyList<PartitionLagRow> Partitions);

    private static Command Describe()
    {
        var ids = new Argument<string[]>("group") { Description = "Groups to describe", Arity = ArgumentArity.OneOrMore };
        var noLagTime = new Option<bool>("--no-lag-time") { Description = "Skip reading the record at each committed offset (lag in time stays unknown)" };
        var command = new Command("describe",
            "State, members and, per partition, the committed offset, log end offset, lag in records, lag in time (age of the record at the committed offset) and commit metadata")
        { ids, noLagTime };
        command.SetToolAction("groups describe", async ctx =>
        {
            var wanted = ctx.Get(ids).Distinct(StringComparer.Ordinal).ToList();
            var reports = await ctx.ProgressAsync("Describing groups", status => DescribeAsync(ctx, wanted, !ctx.Get(noLagTime), status));
            if (ctx.Json)
            {
                Terminal.WriteJson(new JsonObject { ["groups"] = new JsonArray(reports.Select(r => (JsonNode)ToJson(r)).ToArray()) });
                return 0;
            }
            foreach (var r in reports) Show(ctx, r);
            return 0;
        });
        return command;
    }

    private static async Task<List<GroupReport>> DescribeAsync(ToolContext ctx, IReadOnlyList<string> groupIds, bool lagTime, Action<string> status)
    {
        var admin = ctx.Admin;
        var described = await admin.DescribeGroupsAsync(groupIds, ctx.CancellationToken);
        var committedByGroup = new Dictionary<string, IReadOnlyDictionary<TopicPartition, OffsetAndMetadata>>();
        foreach (var g in described)
            committedByGroup[g.GroupId] = await admin.FetchCommittedOffsetsAsync(g.GroupId, null, ctx.CancellationToken);
        var missing = described.Where(g => g.State == "Dead" && g.Members.Count == 0 && committedByGroup[g.GroupId].Count == 0).Select(g => g.GroupId).ToList();
        if (missing.Count > 0)
            throw new ToolException(missing.Count == 1 ? $"group '{missing[0]}' does not exist" : $"groups {string.Join(", ", missing.Select(m => $"'{m}'"))} do not exist");

        // Every partition a group has an offset for or a member owns; offsets only for those of existing topics.
        var owners = described.ToDictionary(g => g.GroupId, g => g.Members
            .SelectMany(m => (m.Assignment ?? []).Select(tp => (tp, m)))
            .GroupBy(x => x.tp).ToDictionary(x => x.Key, x => x.First().m));
        var all = described.SelectMany(g => committedByGroup[g.GroupId].Keys.Concat(owners[g.GroupId].Keys)).ToHashSet();
        var topicPartitions = (await admin.ListTopicsAsync(true, ctx.CancellationToken)).ToDictionary(t => t.Name, t => t.PartitionCount);
        var listable = all.Where(tp => topicPartitions.TryGetValue(tp.Topic, out var n) && tp.Partition < n).ToList();
        status("Reading log end offsets");
        IReadOnlyDictionary<TopicPartition, ListOffsetsResultInfo> ends = new Dictionary<TopicPartition, ListOffsetsResultInfo>(), starts = ends;
        if (listable.Count > 0)
        {
            ends = await admin.ListOffsetsAsync(listable, OffsetSpec.Latest, cancellationToken: ctx.CancellationToken);
            starts = await admin.ListOffsetsAsync(listable, OffsetSpec.Earliest, cancellationToken: ctx.CancellationToken);
        }

        // Lag in time: the age of the first record not yet consumed (the one at the committed offset).
        var lagging = new Dictionary<TopicPartition, long>();
        foreach (var g in described)
            foreach (var (tp, c) in committedByGroup[g.GroupId])
                if (ends.TryGetValue(tp, out var end) && end.Offset > c.Offset) lagging[tp] = lagging.TryGetValue(tp, out var o) ? Math.Min(o, c.Offset) : c.Offset;
        var timestamps = new Dictionary<(TopicPartition, long), DateTimeOffset>();
        if (lagTime && lagging.Count > 0)
        {
            status("Reading the records at the committed offsets");
            // Per distinct (partition, offset): groups at different offsets of one partition need separate reads.
            foreach (var batch in described.SelectMany(g => committedByGroup[g.GroupId].Where(kv => lagging.ContainsKey(kv.Key)).Select(kv => (kv.Key, kv.Value.Offset)))
                         .Distinct().GroupBy(x => x.Key).SelectMany(g => g.Select((x, i) => (x, i))).GroupBy(y => y.i))
            {
                var positions = batch.ToDictionary(y => y.x.Key, y => y.x.Offset);
                var found = await CommittedRecords.TimestampsAsync(ctx.ClientOptions, positions, TimeSpan.FromSeconds(10), ctx.Verbose ? ToolRunner.Warn : null, ctx.CancellationToken);
                foreach (var (tp, ts) in found) timestamps[(tp, positions[tp])] = ts;
            }
        }

        var now = DateTimeOffset.UtcNow;
        var reports = new List<GroupReport>();
        foreach (var g in described)
        {
            var committed = committedByGroup[g.GroupId];
            var rows = committed.Keys.Concat(owners[g.GroupId].Keys).Distinct().Order().Select(tp =>
            {
                long? c = committed.TryGetValue(tp, out var om) ? om.Offset : null;
                long? end = ends.TryGetValue(tp, out var e) ? e.Offset : null;
                long? start = starts.TryGetValue(tp, out var s) ? s.Offset : null;
                long? lag = c is { } cv && end is { } ev ? Math.Max(0, ev - cv) : null;
                DateTimeOffset? ts = c is { } cc && timestamps.TryGetValue((tp, cc), out var t) ? t : null;
                double? lagSeconds = lag switch
                {
                    0 => 0,
                    > 0 when ts is { } tv => Math.Max(0, (now - tv).TotalSeconds),
                    _ => null,
                };
                return new PartitionLagRow(tp, c, om?.Metadata, start, end, lag, ts, lagSeconds, owners[g.GroupId].GetValueOrDefault(tp));
            }).ToList();
            reports.Add(new GroupReport(g, rows));
        }
        return reports;
    }

    private static JsonObject ToJson(GroupReport r)
    {
        var g = r.Group;
        return new JsonObject
        {
            ["groupId"] = g.GroupId,
            ["state"] = g.State,
            ["protocolType"] = g.ProtocolType,
            ["protocol"] = g.Protocol,
            ["coordinator"] = g.Coordinator,
            ["members"] = new JsonArray(g.Members.Select(m => (JsonNode)new JsonObject
            {
                ["memberId"] = m.MemberId,
                ["groupInstanceId"] = m.GroupInstanceId,
                ["clientId"] = m.ClientId,
                ["clientHost"] = m.ClientHost,
                ["assignment"] = m.Assignment is null ? null : new JsonArray(m.Assignment.Select(tp => (JsonNode)new JsonObject { ["topic"] = tp.Topic, ["partition"] = tp.Partition }).ToArray()),
            }).ToArray()),
            ["offsets"] = new JsonArray(r.Partitions.Select(p => (JsonNode)new JsonObject
            {
                ["topic"] = p.Tp.Topic,
                ["partition"] = p.Tp.Partition,
                ["committedOffset"] = p.Committed,
                ["logStartOffset"] = p.LogStart,
                ["logEndOffset"] = p.LogEnd,
                ["lag"] = p.Lag,
                ["lagSeconds"] = p.LagSeconds is { } s ? Math.Round(s, 3) : null,
                ["committedRecordTimestamp"] = p.CommittedRecordTimestamp?.ToUnixTimeMilliseconds(),
                ["metadata"] = p.Metadata,
                ["memberId"] = p.Owner?.MemberId,
                ["clientId"] = p.Owner?.ClientId,
            }).ToArray()),
            ["totalLag"] = r.Partitions.Sum(p => p.Lag ?? 0),
            ["maxLagSeconds"] = r.Partitions.Any(p => p.LagSeconds is not null) ? Math.Round(r.Partitions.Max(p => p.LagSeconds ?? 0), 3) : null,
        };
    }

    private static void Show(ToolContext ctx, GroupReport r)
    {
        var g = r.Group;
        var protocol = g.ProtocolType.Length == 0 ? "-" : g.Protocol.Length == 0 ? g.ProtocolType : $"{g.ProtocolType}/{g.Protocol}";
        long totalLag = r.Partitions.Sum(p => p.Lag ?? 0);
        ctx.Out.Line($"Group {g.GroupId}: state {g.State}, protocol {protocol}, {g.Members.Count} member(s), coordinator {g.Coordinator}, total lag {totalLag}");
        if (g.Members.Count > 0)
        {
            var members = Terminal.NewTable("MEMBER", "CLIENT ID", "HOST", "ASSIGNMENT");
            foreach (var m in g.Members)
                members.AddTextRow(m.MemberId, m.ClientId, m.ClientHost,
                    m.Assignment is null ? "?" : string.Join(" ", m.Assignment.GroupBy(tp => tp.Topic).Select(t => $"{t.Key}:{string.Join(",", t.Select(tp => tp.Partition))}")));
            ctx.Out.Write(members);
        }
        if (r.Partitions.Count > 0)
        {
            var table = Terminal.NewTable("TOPIC", "PARTITION", "COMMITTED", "LOG END", "LAG", "LAG TIME", "CLIENT ID", "METADATA");
            foreach (var p in r.Partitions)
                table.AddTextRow(p.Tp.Topic, Terminal.Int(p.Tp.Partition), Terminal.Int(p.Committed), Terminal.Int(p.LogEnd), Terminal.Int(p.Lag),
                    Terminal.Duration(p.LagSeconds), p.Owner?.ClientId ?? "-", string.IsNullOrEmpty(p.Metadata) ? "-" : p.Metadata);
            ctx.Out.Write(table);
        }
        else ctx.Out.Note("No committed offsets.");
        ctx.Out.Line("");
    }

    private static Command Delete()
    {
        var ids = new Argument<string[]>("group") { Description = "Groups to delete (with their committed offsets)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("delete", "Delete consumer groups and their offsets (only groups without active members)") { ids };
        command.SetToolAction("groups delete", async ctx =>
        {
            var wanted = ctx.Get(ids).Distinct(StringComparer.Ordinal).ToList();
            try
            {
                await ctx.ProgressAsync("Deleting groups", async () => { await ctx.Admin.DeleteGroupsAsync(wanted, ctx.CancellationToken); return 0; });
            }
            catch (KafkaOperationException e)
            {
                var messages = e.Failures.Select(f => f.Value.Error switch
                {
                    ErrorCode.NonEmptyGroup => $"group '{f.Key}' has active members: stop its consumers first",
                    ErrorCode.GroupIdNotFound => $"group '{f.Key}' does not exist",
                    _ => f.Value.Message,
                }).ToList();
                var done = wanted.Where(w => !e.Failures.ContainsKey(w)).ToList();
                if (done.Count > 0) Console.Out.WriteLine($"Deleted group{(done.Count == 1 ? "" : "s")} {string.Join(", ", done)}.");
                throw new ToolException(string.Join("; ", messages));
            }
            if (ctx.Json) Terminal.WriteJson(new JsonObject { ["deleted"] = new JsonArray(wanted.Select(w => (JsonNode)w).ToArray()) });
            else ctx.Out.Line($"Deleted group{(wanted.Count == 1 ? "" : "s")} {string.Join(", ", wanted)}.");
            return 0;
        });
        return command;
    }

    private static Option<string[]> TopicScopeOption(string description) =>
        new("--topic", "-t") { Description = description, HelpName = "topic[:p,...]", AllowMultipleArgumentsPerToken = false };

    private static Command DeleteOffsets()
    {
        var id = new Argument<string>("group") { Description = "The group" };
        var topic = TopicScopeOption("Delete the group's offsets of this topic, or of the listed partitions (repeatable)");
        var command = new Command("delete-offsets", "Delete some of a group's committed offsets (refused for topics its active members consume)") { id, topic };
        command.SetToolAction("groups delete-offsets", async ctx =>
        {
            var groupId = ctx.Get(id);
            var scopes = (ctx.Get(topic) ?? []).Select(OffsetResetScope.ParseTopic).ToList();
            if (scopes.Count == 0) throw new UsageException("give --topic TOPIC or --topic TOPIC:P1,P2,...");
            var partitions = await ctx.ProgressAsync($"Deleting offsets of {groupId}", async () =>
            {
                var committed = await ctx.Admin.FetchCommittedOffsetsAsync(groupId, null, ctx.CancellationToken);
                var selected = new List<TopicPartition>();
                foreach (var s in scopes)
                {
                    var matching = s.Partitions is { } ps
                        ? ps.Select(p => new TopicPartition(s.Topic!, p)).ToList()
                        : committed.Keys.Where(tp => tp.Topic == s.Topic).ToList();
                    if (matching.Count == 0) throw new ToolException($"group '{groupId}' has no committed offsets for topic '{s.Topic}'");
                    selected.AddRange(matching);
                }
                selected = selected.Distinct().Order().ToList();
                try
                {
                    await ctx.Admin.DeleteGroupOffsetsAsync(groupId, selected, ctx.CancellationToken);
                }
                catch (KafkaException e) when (e.Error == ErrorCode.GroupSubscribedToTopic)
                {
                    throw new ToolException($"group '{groupId}' has active members consuming the topic: stop them first ({e.Message})");
                }
                catch (KafkaException e) when (e.Error == ErrorCode.GroupIdNotFound)
                {
                    throw new ToolException($"group '{groupId}' does not exist");
                }
                return selected;
            });
            if (ctx.Json)
                Terminal.WriteJson(new JsonObject
                {
                    ["group"] = groupId,
                    ["deleted"] = new JsonArray(partitions.Select(tp => (JsonNode)new JsonObject { ["topic"] = tp.Topic, ["partition"] = tp.Partition }).ToArray()),
                });
            else ctx.Out.Line($"Deleted the committed offsets of group {groupId} for {string.Join(", ", partitions.Select(tp => $"{tp.Topic}:{tp.Partition}"))}.");
            return 0;
        });
        return command;
    }

    private static Command ResetOffsets()
    {
        var id = new Argument<string>("group") { Description = "The group (it must have no active members for --execute)" };
        var topic = TopicScopeOption("Reset this topic's partitions, or only the listed ones (repeatable)");
        var allTopics = new Option<bool>("--all-topics") { Description = "Reset every partition the group has a committed offset for" };
        var toEarliest = new Option<bool>("--to-earliest") { Description = "To the log start offset" };
        var toLatest = new Option<bool>("--to-latest") { Description = "To the log end offset (skip everything not yet consumed)" };
        var toCurrent = new Option<bool>("--to-current") { Description = "To the committed offset (partitions without one: the log end)" };
        var toOffset = new Option<string?>("--to-offset") { Description = "To offset N", HelpName = "N" };
        var toDatetime = new Option<string?>("--to-datetime") { Description = "To the first record at or after an ISO-8601 date-time, e.g. 2026-11-20T10:00:00Z (no zone: UTC)", HelpName = "datetime" };
        var byDuration = new Option<string?>("--by-duration") { Description = "To the first record at or after now minus an ISO-8601 duration, e.g. PT2H or P1DT12H", HelpName = "duration" };
        var shiftBy = new Option<string?>("--shift-by") { Description = "Move the committed offset by ±N, e.g. -5", HelpName = "N" };
        var fromFile = new Option<FileInfo?>("--from-file") { Description = "Offsets from a CSV file of topic,partition,offset lines ('cairn offsets export' writes one)", HelpName = "plan.csv" };
        var execute = new Option<bool>("--execute") { Description = "Commit the new offsets (without it: a dry run that only shows the plan)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Only show the plan (the default)" };
        var command = new Command("reset-offsets", "Move a group's committed offsets: shows the plan (current, target; targets clamped to the log) and commits it only with --execute, only while the group has no active members")
        { id, topic, allTopics, toEarliest, toLatest, toCurrent, toOffset, toDatetime, byDuration, shiftBy, fromFile, execute, dryRun };
        command.SetToolAction("groups reset-offsets", async ctx =>
        {
            var groupId = ctx.Get(id);
            if (ctx.Get(execute) && ctx.Get(dryRun)) throw new UsageException("--execute and --dry-run contradict each other");
            var modes = new List<(string Name, string? Argument)>();
            if (ctx.Get(toEarliest)) modes.Add(("to-earliest", null));
            if (ctx.Get(toLatest)) modes.Add(("to-latest", null));
            if (ctx.Get(toCurrent)) modes.Add(("to-current", null));
            if (ctx.Get(toOffset) is { } o) modes.Add(("to-offset", o));
            if (ctx.Get(toDatetime) is { } d) modes.Add(("to-datetime", d));
            if (ctx.Get(byDuration) is { } b) modes.Add(("by-duration", b));
            if (ctx.Get(shiftBy) is { } s) modes.Add(("shift-by", s));
            if (ctx.Get(fromFile) is { } f) modes.Add(("from-file", f.FullName));
            if (modes.Count != 1)
                throw new UsageException((modes.Count == 0 ? "no reset mode given" : $"{modes.Count} reset modes given ({string.Join(", ", modes.Select(m => "--" + m.Name))})") +
                    ": give exactly one of --to-earliest, --to-latest, --to-current, --to-offset N, --to-datetime DATETIME, --by-duration DURATION, --shift-by N, --from-file FILE");
            var (mode, argument) = modes[0];
            if (mode == "from-file") argument = await ReadPlanFileAsync(argument!, ctx.CancellationToken);
            var spec = OffsetResetSpec.Parse(mode, argument);
            if (spec.Mode == OffsetResetMode.ToOffset && spec.Offset < 0) throw new UsageException("--to-offset must not be negative");

            var scopes = (ctx.Get(topic) ?? []).Select(OffsetResetScope.ParseTopic).ToList();
            if (ctx.Get(allTopics))
            {
                if (scopes.Count > 0) throw new UsageException("give --topic or --all-topics, not both");
                scopes.Add(OffsetResetScope.All);
            }
            if (scopes.Count == 0 && spec.Mode != OffsetResetMode.FromFile)
                throw new UsageException("say which partitions: --topic TOPIC[:P1,P2,...] (repeatable) or --all-topics");
            return await OffsetResets.RunAsync(ctx, groupId, spec, scopes, ctx.Get(execute));
        });
        return command;
    }

    /// <summary>The text of a plan file ("-" is stdin); a missing file is a usage error.</summary>
    public static async Task<string> ReadPlanFileAsync(string path, CancellationToken cancellationToken)
    {
        if (path == "-" || path.EndsWith($"{Path.DirectorySeparatorChar}-", StringComparison.Ordinal) && !File.Exists(path))
            return await Console.In.ReadToEndAsync(cancellationToken);
        if (!File.Exists(path)) throw new UsageException($"plan file '{path}' does not exist");
        return await File.ReadAllTextAsync(path, cancellationToken);
    }
}
