using Cairn.Broker.Groups;
using Cairn.Broker.Metrics;
using Cairn.Storage;

namespace Cairn.Broker.Admin;

/// <summary>The broker metrics' view of the groups: membership from the coordinator, lag as the admin API computes it.</summary>
internal sealed class GroupMetricsSource(GroupCoordinator groups, LogManager logs) : IGroupMetricsSource
{
    public IReadOnlyList<string> GroupIds() => groups.ListGroups().Select(g => g.GroupId).ToArray();

    public int ActiveMembers(string groupId) => groups.DescribeGroup(groupId).Members.Count;

    public int CommittedPartitions(string groupId) => groups.FetchOffsets(groupId, null).Count;

    public IReadOnlyList<GroupPartitionMetrics> Lag(string groupId, DateTimeOffset now) =>
        GroupLagReader.Read(groups, logs, groupId).Select(l => new GroupPartitionMetrics(l.Topic, l.Partition, l.CommittedOffset, l.Lag, GroupLag.LagSeconds(l, now))).ToArray();
}
