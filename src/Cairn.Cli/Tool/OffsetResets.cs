using Cairn.Admin.Model;
using Cairn.Client;
using Cairn.Protocol;

namespace Cairn.Cli.Tool;

/// <summary>
/// Offset resets for <c>groups reset-offsets</c> and <c>offsets import</c>: gathers what <see cref="OffsetResetPlanner"/>
/// needs from the cluster (committed offsets, each partition's range, timestamp lookups), so the command line and the
/// broker's admin API plan alike; shows the plan; commits it only while the group has no active members.
/// </summary>
internal static class OffsetResets
{
    /// <param name="scopes">the partitions; empty only for from-file (the file's rows are the scope)</param>
    public static async Task<OffsetResetPlan> PlanAsync(KafkaAdminClient admin, string groupId, OffsetResetSpec spec, IReadOnlyList<OffsetResetScope> scopes,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var committedOffsets = await admin.FetchCommittedOffsetsAsync(groupId, null, cancellationToken);
        var committed = committedOffsets.ToDictionary(kv => (kv.Key.Topic, kv.Key.Partition), kv => kv.Value.Offset);

        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in scopes)
        {
            if (s.Topic is { } t) topics.Add(t);
            if (s.AllTopics) foreach (var key in committed.Keys) topics.Add(key.Topic);
        }
        foreach (var r in spec.FileRows) topics.Add(r.Topic);

        var existing = (await admin.ListTopicsAsync(true, cancellationToken)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var described = await admin.DescribeTopicsAsync(topics.Where(existing.Contains), includeOffsets: true, cancellationToken);
        var ranges = new List<PartitionRange>();
        foreach (var t in described)
            foreach (var p in t.Partitions)
            {
                if (p.LogStartOffset is not { } start || p.LogEndOffset is not { } end)
                    throw new ToolException($"cannot read the offset range of {t.Name}:{p.Partition} (its leader did not answer ListOffsets)");
                ranges.Add(new PartitionRange(t.Name, p.Partition, start, end));
            }

        // to-datetime and by-duration: one ListOffsets by time for every partition involved, at the instant the planner will ask for.
        long? lookupTime = spec.Mode switch
        {
            OffsetResetMode.ToDatetime => Math.Max(0, spec.Datetime.ToUnixTimeMilliseconds()),
            OffsetResetMode.ByDuration => spec.Duration >= now - DateTimeOffset.UnixEpoch ? 0 : Math.Max(0, (now - spec.Duration).ToUnixTimeMilliseconds()),
            _ => null,
        };
        var byTime = new Dictionary<(string, int), long>();
        if (lookupTime is { } ts && ranges.Count > 0)
        {
            var found = await admin.ListOffsetsAsync(ranges.Select(r => new TopicPartition(r.Topic, r.Partition)), OffsetSpec.ForTimestamp(DateTimeOffset.FromUnixTimeMilliseconds(ts)),
                cancellationToken: cancellationToken);
            foreach (var (tp, info) in found)
                if (info.Offset >= 0) byTime[(tp.Topic, tp.Partition)] = info.Offset;
        }
        long? OffsetForTimestamp(string topic, int partition, long timestamp)
        {
            if (timestamp != lookupTime) throw new InvalidOperationException($"the planner looked up {timestamp}, not {lookupTime}");
            return byTime.TryGetValue((topic, partition), out var o) ? o : null;
        }

        if (scopes.Count == 0) return OffsetResetPlanner.Plan(spec, null, committed, ranges, OffsetForTimestamp, now);
        var plans = scopes.Select(s => OffsetResetPlanner.Plan(spec, s, committed, ranges, OffsetForTimestamp, now)).ToList();
        if (plans.Count == 1) return plans[0];
        var rows = plans.SelectMany(p => p.Rows).DistinctBy(r => (r.Topic, r.Partition))
            .OrderBy(r => r.Topic, StringComparer.Ordinal).ThenBy(r => r.Partition).ToList();
        return new OffsetResetPlan(spec, rows, plans.SelectMany(p => p.Errors).Distinct().ToList(), plans.SelectMany(p => p.Warnings).Distinct().ToList());
    }

    public static string ActiveGroupMessage(string groupId, GroupDescription group) =>
        $"group '{groupId}' has {group.Members.Count} active member(s) (state {group.State}); offsets can only be changed while the group is inactive: stop its consumers first";

    /// <summary>
    /// Plans, shows the plan and (with <paramref name="execute"/>) commits it. Dry runs change nothing. Returns the exit code.
    /// </summary>
    public static async Task<int> RunAsync(ToolContext ctx, string groupId, OffsetResetSpec spec, IReadOnlyList<OffsetResetScope> scopes, bool execute)
    {
        var admin = ctx.Admin;
        var (plan, group) = await ctx.ProgressAsync($"Planning the reset of {groupId}", async status =>
        {
            var g = (await admin.DescribeGroupsAsync([groupId], ctx.CancellationToken))[0];
            if (execute && g.Members.Count > 0) throw new ToolException(ActiveGroupMessage(groupId, g));
            var p = await PlanAsync(admin, groupId, spec, scopes, DateTimeOffset.UtcNow, ctx.CancellationToken);
            return (p, g);
        });

        bool executed = false;
        if (execute && plan.IsValid && plan.Rows.Count > 0)
        {
            var offsets = plan.Rows.ToDictionary(r => new TopicPartition(r.Topic, r.Partition), r => new OffsetAndMetadata(r.Target));
            await ctx.ProgressAsync($"Committing {offsets.Count} offset(s) for {groupId}", async () =>
            {
                try
                {
                    await admin.CommitGroupOffsetsAsync(groupId, offsets, ctx.CancellationToken);
                }
                catch (KafkaException e) when (e.Error is ErrorCode.UnknownMemberId or ErrorCode.IllegalGeneration or ErrorCode.RebalanceInProgress or ErrorCode.FencedInstanceId)
                {
                    // A member joined between the check and the commit.
                    var now = (await admin.DescribeGroupsAsync([groupId], ctx.CancellationToken))[0];
                    throw new ToolException(ActiveGroupMessage(groupId, now));
                }
                return 0;
            });
            executed = true;
        }

        if (ctx.Json)
        {
            var message = !plan.IsValid ? "the plan has errors; nothing was changed"
                : plan.Rows.Count == 0 ? "nothing to reset"
                : executed ? $"committed {plan.Rows.Count} offset(s)"
                : "dry run: nothing was changed; run again with --execute to commit these offsets";
            var warnings = plan.Warnings.ToList();
            if (!execute && group.Members.Count > 0) warnings.Add(ActiveGroupMessage(groupId, group) + "; --execute would be refused");
            Terminal.WriteDocument(AdminDocuments.ResetBody(groupId, plan, AdminDocuments.ScopeText(scopes), !execute, executed, group.State, group.Members.Count, warnings, message));
        }
        else Show(ctx, groupId, plan, group, execute, executed);
        return plan.IsValid ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static void Show(ToolContext ctx, string groupId, OffsetResetPlan plan, GroupDescription group, bool execute, bool executed)
    {
        var table = Terminal.NewTable("TOPIC", "PARTITION", "CURRENT", "TARGET", "LOG START", "LOG END", "NOTE");
        foreach (var r in plan.Rows)
            table.AddTextRow(r.Topic, Terminal.Int(r.Partition), Terminal.Int(r.Current), Terminal.Int(r.Target), Terminal.Int(r.LogStartOffset), Terminal.Int(r.LogEndOffset),
                r.ClampNote ?? (r.Current == r.Target ? "unchanged" : ""));
        ctx.Out.Line($"Group {groupId}: {plan.Spec}");
        if (plan.Rows.Count > 0) ctx.Out.Write(table);
        foreach (var e in plan.Errors) ToolRunner.Error("error: " + e);
        foreach (var w in plan.Warnings) ToolRunner.Warn(w);
        if (!plan.IsValid) ToolRunner.Error("The plan has errors: nothing was changed.");
        else if (plan.Rows.Count == 0) ctx.Out.Line("Nothing to reset.");
        else if (executed) ctx.Out.Line($"Committed {plan.Rows.Count} offset(s) for group {groupId}.");
        else
        {
            if (group.Members.Count > 0) ToolRunner.Warn(ActiveGroupMessage(groupId, group) + "; --execute would be refused");
            ctx.Out.Line("Dry run: nothing was changed. Run again with --execute to commit these offsets.");
        }
    }
}
