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

    /// <summary>
    /// A problem <see cref="InitializeAsync"/> found in the stored data (a damaged database, lost writes) and went on with
    /// because the operator accepted the loss (offset.store.accept.loss); null when none. Without that setting such a
    /// problem fails <see cref="InitializeAsync"/> instead.
    /// </summary>
    GroupStoreProblem? IntegrityProblem => null;
}

/// <summary>What the group store's start-up check found wrong.</summary>
internal enum GroupStoreProblemKind
{
    /// <summary>The database file is damaged (SQLite <c>PRAGMA quick_check</c> failed, or the file is not a database).</summary>
    Corrupt,

    /// <summary>The database is consistent but older than it was known to be: acknowledged writes (offset commits) were lost.</summary>
    WritesLost,
}

/// <param name="Message">The whole explanation, as logged: which file, what failed, how to recover.</param>
internal sealed record GroupStoreProblem(GroupStoreProblemKind Kind, string Message);

/// <summary>The group store's data failed its start-up check; the broker does not start on it unless the loss is accepted.</summary>
internal sealed class GroupStoreIntegrityException(GroupStoreProblem problem, string message) : InvalidOperationException(message)
{
    public GroupStoreProblem Problem { get; } = problem;
}
