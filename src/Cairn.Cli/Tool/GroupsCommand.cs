using System.CommandLine;
using System.Text.Json.Nodes;
using Cairn.Admin.Model;
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
        var command = new Command("list", "List consumer groups with their state, number of members and total lag (records)") { state };
        command.SetToolAction("groups list", async ctx =>
        {
            var states = ctx.Get(state) ?? [];
            if (ctx.Output == OutputFormat.Text)
            {
                // Names only, for scripts: no need to gather the lag.
                var names = await ctx.Admin.ListGroupsAsync(states.Length > 0 ? states : null, ctx.CancellationToken);
                foreach (var g in names.Where(g => states.Length == 0 || g.State is null || states.Contains(g.State, StringComparer.OrdinalIgnoreCase)))
                    Console.Out.WriteLine(g.GroupId);
                return 0;
            }
            var listed = await ctx.ProgressAsync("Listing groups", () => GroupQueries.ListAsync(ctx.Admin, states, ctx.CancellationToken));
            if (ctx.Json)
            {
                Terminal.WriteDocument(new AdminDocuments.GroupsDto(listed));
                return 0;
            }
            if (listed.Count == 0)
            {
                ctx.Out.Note("(no groups)");
                return 0;
            }
            TextColumn[] columns =
            [
                new("GROUP"), new("STATE"), new("MEMBERS", RightAligned: true), new("PARTITIONS", "PARTS", RightAligned: true, DropOrder: 2),
                new("TOTAL-LAG", "LAG", RightAligned: true), new("PROTOCOL-TYPE", "TYPE", DropOrder: 1),
            ];
            var rows = listed.Select(g => new[]
            {
                g.GroupId, g.State, Terminal.Int(g.Members), Terminal.Int(g.Partitions), Terminal.Int(g.LagRecords), g.ProtocolType.Length > 0 ? g.ProtocolType : "-",
            }).ToList();
            Terminal.WriteLines(TextTable.Fit(columns, rows, Terminal.Width).Lines, firstIsHeader: true);
            return 0;
        });
        return command;
    }

    private static Command Describe()
    {
        var ids = new Argument<string[]>("group") { Description = "Groups to describe", Arity = ArgumentArity.ZeroOrMore };
        var allGroups = new Option<bool>("--all-groups") { Description = "Describe every group" };
        var noLagTime = new Option<bool>("--no-lag-time") { Description = "Skip reading the record at each committed offset (lag in time stays unknown)" };
        var command = new Command("describe",
            "State, members and, per partition, the committed offset, log start and end offsets, lag in records, lag in time (age of the record at the committed offset), " +
            "the member consuming it (CONSUMER-ID, HOST, CLIENT-ID) and commit metadata")
        { ids, allGroups, noLagTime };
        command.SetToolAction("groups describe", async ctx =>
        {
            var wanted = (ctx.Get(ids) ?? []).Distinct(StringComparer.Ordinal).ToList();
            bool all = ctx.Get(allGroups);
            if (all && wanted.Count > 0) throw new UsageException("give group names or --all-groups, not both");
            if (!all && wanted.Count == 0) throw new UsageException("name the groups to describe, or give --all-groups");
            var reports = await ctx.ProgressAsync("Describing groups", async status =>
            {
                if (all) wanted = (await ctx.Admin.ListGroupsAsync(null, ctx.CancellationToken)).Select(g => g.GroupId).ToList();
                return await GroupQueries.DescribeAsync(ctx, wanted, !ctx.Get(noLagTime), status);
            });
            if (ctx.Json)
            {
                Terminal.WriteDocument(new AdminDocuments.GroupDescriptionsDto(reports));
                return 0;
            }
            if (reports.Count == 0) ctx.Out.Note("(no groups)");
            for (int i = 0; i < reports.Count; i++)
            {
                if (i > 0) Console.Out.WriteLine();
                Terminal.WriteLines(DescribeLines(reports[i], Terminal.Width), firstIsHeader: false);
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// A described group as text that fits <paramref name="width"/> without breaking a word: a summary line, the
    /// partition table (columns Kafka's kafka-consumer-groups --describe shows, plus LOG-START, LAG-TIME and
    /// METADATA), and, when the member columns do not fit, the members as blocks below it.
    /// </summary>
    public static List<string> DescribeLines(AdminDocuments.GroupDto g, int width)
    {
        var protocol = g.ProtocolType.Length == 0 ? "-" : g.Protocol.Length == 0 ? g.ProtocolType : $"{g.ProtocolType}/{g.Protocol}";
        var lines = TextTable.Wrap($"Group {g.GroupId}: state {g.State}, {g.Members.Count} member(s), protocol {protocol}, coordinator {g.Coordinator?.ToString() ?? "?"}, " +
            $"total lag {g.LagRecords}", width);
        if (g.Partitions.Count == 0)
        {
            lines.Add(g.Members.Count == 0 ? "No committed offsets." : "No committed offsets, no partitions assigned.");
            return lines;
        }
        TextColumn[] columns =
        [
            new("TOPIC"), new("PARTITION", "PART", RightAligned: true), new("CURRENT-OFFSET", "CURRENT", RightAligned: true),
            new("LOG-START-OFFSET", "LOG-START", RightAligned: true, DropOrder: 6), new("LOG-END-OFFSET", "LOG-END", RightAligned: true),
            new("LAG", RightAligned: true), new("LAG-TIME", RightAligned: true, DropOrder: 5), new("CONSUMER-ID", DropOrder: 3), new("HOST", DropOrder: 2),
            new("CLIENT-ID", DropOrder: 4), new("METADATA", DropOrder: 1),
        ];
        var rows = g.Partitions.Select(p => new[]
        {
            p.Topic, Terminal.Int(p.Partition), Terminal.Int(p.CommittedOffset), Terminal.Int(p.LogStartOffset), Terminal.Int(p.LogEndOffset), Terminal.Int(p.Lag),
            Terminal.Duration(p.LagSeconds), p.MemberId ?? "-", p.ClientHost ?? "-", p.ClientId ?? "-", string.IsNullOrEmpty(p.Metadata) ? "-" : p.Metadata,
        }).ToList();
        var layout = TextTable.Fit(columns, rows, width);
        lines.AddRange(layout.Lines);
        // What did not fit in the table: the members (id, host, client id, assignment) and the commit metadata.
        if (g.Members.Count > 0 && !(layout.Shown.Contains(7) && layout.Shown.Contains(8) && layout.Shown.Contains(9)))
        {
            lines.Add("Members:");
            foreach (var m in g.Members)
            {
                lines.AddRange(TextTable.Wrap(m.MemberId, width, "  "));
                var assigned = m.Assignment is null ? "?" : m.Assignment.Count == 0 ? "-" : string.Join(" ", m.Assignment.Select(a => $"{a.Topic}:{string.Join(",", a.Partitions)}"));
                lines.AddRange(TextTable.Wrap($"host {m.ClientHost}, client id {m.ClientId}, assigned {assigned}", width, "    "));
            }
        }
        if (!layout.Shown.Contains(10) && g.Partitions.Any(p => !string.IsNullOrEmpty(p.Metadata)))
        {
            lines.Add("Commit metadata:");
            foreach (var p in g.Partitions.Where(p => !string.IsNullOrEmpty(p.Metadata)))
                lines.AddRange(TextTable.Wrap($"{p.Topic}:{p.Partition} {p.Metadata}", width, "  "));
        }
        return lines;
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
        var toDatetime = new Option<string?>("--to-datetime") { Description = "To the first record at or after an ISO-8601 date-time, e.g. 2026-11-20T10:00:00 (local time), 2026-11-20T10:00:00Z (UTC) or 2026-11-20T10:00:00+01:00", HelpName = "datetime" };
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
            // Like Kafka's tools: a date-time without a zone is the user's local time.
            var spec = OffsetResetSpec.Parse(mode, argument, TimeZoneInfo.Local);
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
