namespace Cairn.Broker.Metrics;

/// <summary>
/// What the per-group gauges read. The admin side computes group lag and hands it in through this interface, so the
/// metrics do not depend on the admin code (which serves them).
/// </summary>
internal interface IGroupMetricsSource
{
    /// <summary>Every group, in the order their series are kept when there are more than metrics.max.series.</summary>
    IReadOnlyList<string> GroupIds();

    int ActiveMembers(string groupId);

    /// <summary>Partitions the group has committed offsets for (the series it would have).</summary>
    int CommittedPartitions(string groupId);

    /// <summary>
    /// The group's committed partitions with their lag at <paramref name="now"/>. Throws <see cref="ObjectDisposedException"/>
    /// or <see cref="IOException"/> when a topic is deleted meanwhile.
    /// </summary>
    IReadOnlyList<GroupPartitionMetrics> Lag(string groupId, DateTimeOffset now);
}

/// <summary>One committed partition of a group: its offset, and how far behind the log end it is in records and seconds.</summary>
internal readonly record struct GroupPartitionMetrics(string Topic, int Partition, long CommittedOffset, long LagRecords, double LagSeconds);
