using Cairn.Admin.Model;
using Cairn.Broker.Groups;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Broker.Admin;

/// <summary>The outcome of executing a plan: refused (the group is active), or per-partition results.</summary>
internal sealed record OffsetResetExecution(bool Refused, string? Message, IReadOnlyList<PartitionError> Results)
{
    public bool Succeeded => !Refused && Results.All(r => r.Error == ErrorCode.None);
}

/// <summary>
/// Runs <see cref="OffsetResetPlanner"/> against this broker's logs and committed offsets, and executes a plan as a
/// standalone offset commit (generation -1, no member), only while the group has no active members.
/// </summary>
internal sealed class OffsetResetService(LogManager logs, GroupCoordinator groups, TimeProvider time)
{
    public OffsetResetPlan Plan(string groupId, OffsetResetSpec spec, OffsetResetScope? scope)
    {
        var committed = new Dictionary<(string Topic, int Partition), long>();
        foreach (var c in groups.FetchOffsets(groupId, null)) committed[(c.Topic, c.Partition)] = c.Offset;

        var topics = new HashSet<string>(StringComparer.Ordinal);
        if (scope?.Topic is { } t) topics.Add(t);
        foreach (var key in committed.Keys) topics.Add(key.Topic);
        foreach (var r in spec.FileRows) topics.Add(r.Topic);
        var ranges = new List<PartitionRange>();
        foreach (var name in topics)
        {
            if (!logs.TryGetTopic(name, out var topic)) continue;
            foreach (var p in topic.Partitions) ranges.Add(new PartitionRange(name, p.Partition, p.LogStartOffset, p.HighWatermark));
        }
        return OffsetResetPlanner.Plan(spec, scope, committed, ranges, OffsetForTimestamp, time.GetUtcNow());
    }

    private long? OffsetForTimestamp(string topic, int partition, long timestampMs)
    {
        var found = logs.GetPartition(topic, partition)?.FindOffsetByTimestamp(timestampMs);
        return found is { Offset: >= 0 } f ? f.Offset : null;
    }

    /// <summary>Members currently in the group (0 for an unknown group).</summary>
    public int ActiveMembers(string groupId) => groups.DescribeGroup(groupId).Members.Count;

    public static string ActiveGroupMessage(string groupId, GroupDescription group) =>
        $"group '{groupId}' has {group.Members.Count} active member(s) (state {group.State}); offsets can only be reset while the group is inactive: stop its consumers first";

    /// <summary>Commits the plan's targets, unless the group has active members.</summary>
    public async Task<OffsetResetExecution> ExecuteAsync(string groupId, OffsetResetPlan plan, CancellationToken cancellationToken = default)
    {
        if (!plan.IsValid) throw new InvalidOperationException("the plan has errors: " + string.Join("; ", plan.Errors));
        var description = groups.DescribeGroup(groupId);
        if (description.Members.Count > 0) return new OffsetResetExecution(true, ActiveGroupMessage(groupId, description), []);
        if (plan.Rows.Count == 0) return new OffsetResetExecution(false, "nothing to reset", []);
        var entries = plan.Rows.Select(r => new OffsetCommitEntry(r.Topic, r.Partition, r.Target, -1, null)).ToList();
        var results = await groups.CommitOffsetsAsync(groupId, -1, "", null, entries, cancellationToken);
        // The coordinator accepts a standalone commit only while the group is empty: a member that joined
        // between the check above and the commit makes it refuse the whole commit.
        if (results.Any(r => r.Error is ErrorCode.UnknownMemberId or ErrorCode.IllegalGeneration or ErrorCode.RebalanceInProgress or ErrorCode.FencedInstanceId))
            return new OffsetResetExecution(true, ActiveGroupMessage(groupId, groups.DescribeGroup(groupId)), results);
        return new OffsetResetExecution(false, null, results);
    }
}
