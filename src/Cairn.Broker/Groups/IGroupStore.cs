namespace Cairn.Broker.Groups;

/// <summary>A committed offset of one partition, as the group coordinator keeps it.</summary>
internal sealed record CommittedOffset(
    string Topic,
    Guid TopicId,
    int Partition,
    long Offset,
    int LeaderEpoch,
    string? Metadata,
    DateTimeOffset CommitTime);

/// <summary>The offsets one request commits for one group.</summary>
internal sealed record GroupOffsetCommit(string GroupId, IReadOnlyList<CommittedOffset> Offsets);

/// <summary>A protocol a member supports, with its opaque metadata (the subscription).</summary>
internal sealed record MemberProtocol(string Name, byte[] Metadata);

/// <summary>A group member as persisted, so static members keep their assignment across a broker restart.</summary>
internal sealed record StoredMember(
    string MemberId,
    string? GroupInstanceId,
    string ClientId,
    string ClientHost,
    int RebalanceTimeoutMs,
    int SessionTimeoutMs,
    IReadOnlyList<MemberProtocol> Protocols,
    byte[] Assignment);

/// <summary>Group metadata as persisted after each completed rebalance or membership change.</summary>
internal sealed record StoredGroup(
    string GroupId,
    string? ProtocolType,
    string? Protocol,
    int Generation,
    string? Leader,
    /// <summary>When the group last became empty; offsets expire counted from here.</summary>
    DateTimeOffset? EmptySince,
    IReadOnlyList<StoredMember> Members);

/// <summary>
/// Durable home of committed offsets and group metadata. Every write is one transaction and is durable
/// when its task completes. Rows are keyed by cluster id (given to the implementation), group, topic id
/// and partition, so several brokers can later share one database.
/// </summary>
internal interface IGroupStore : IAsyncDisposable
{
    /// <summary>Creates or migrates the schema (schema version table, migrations applied in order); safe on every start.</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Stores the commits of one or more groups in a single transaction (later commits of a partition win).</summary>
    Task CommitOffsetsAsync(IReadOnlyList<GroupOffsetCommit> commits, CancellationToken cancellationToken = default);

    /// <summary>Every group's committed offsets, for loading the coordinator's cache at start-up.</summary>
    Task<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>> GetAllOffsetsAsync(CancellationToken cancellationToken = default);

    Task DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default);

    /// <summary>Removes the offsets of a deleted topic from every group.</summary>
    Task DeleteTopicOffsetsAsync(string topic, CancellationToken cancellationToken = default);

    Task SaveGroupAsync(StoredGroup group, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<StoredGroup>> GetGroupsAsync(CancellationToken cancellationToken = default);

    /// <summary>Deletes the group's metadata and all its committed offsets.</summary>
    Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default);
}
