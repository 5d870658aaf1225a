using Cairn.Broker.Groups;
using Cairn.Protocol;

namespace Cairn.Broker.Services;

/// <summary>Group membership as the group handlers drive it: join, sync, heartbeat, leave, list, describe, delete.</summary>
internal interface IGroupCoordinator
{
    Task<JoinGroupResult> JoinGroupAsync(JoinGroupRequestData request);

    Task<SyncGroupResult> SyncGroupAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments);

    ErrorCode Heartbeat(string groupId, int generation, string memberId, string? groupInstanceId);

    Task<(ErrorCode Error, IReadOnlyList<(string MemberId, string? GroupInstanceId, ErrorCode Error)> Members)> LeaveGroupAsync(
        string groupId, IReadOnlyList<(string MemberId, string? GroupInstanceId)> leaving);

    IReadOnlyList<GroupOverview> ListGroups();

    GroupDescription DescribeGroup(string groupId);

    /// <summary>Deletes an empty group with its committed offsets (NON_EMPTY_GROUP otherwise).</summary>
    Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken cancellationToken);
}

/// <summary>Groups' committed offsets: commit (durable before it answers), fetch, delete, and dropping a deleted topic's.</summary>
internal interface ICommittedOffsets
{
    Task<IReadOnlyList<PartitionError>> CommitOffsetsAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        IReadOnlyList<OffsetCommitEntry> entries, CancellationToken cancellationToken);

    /// <summary>The committed offsets of the named partitions (null: all of the group's).</summary>
    IReadOnlyList<CommittedOffset> FetchOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions);

    Task<(ErrorCode Error, IReadOnlyList<PartitionError> Partitions)> DeleteOffsetsAsync(string groupId,
        IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken);

    Task OnTopicDeletedAsync(string topic, CancellationToken cancellationToken);
}

/// <summary>Both handler-facing views over the one <see cref="GroupCoordinator"/>.</summary>
internal sealed class CoordinatorServices(GroupCoordinator coordinator) : IGroupCoordinator, ICommittedOffsets
{
    public Task<JoinGroupResult> JoinGroupAsync(JoinGroupRequestData request) => coordinator.JoinGroupAsync(request);

    public Task<SyncGroupResult> SyncGroupAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments) =>
        coordinator.SyncGroupAsync(groupId, generation, memberId, groupInstanceId, protocolType, protocolName, assignments);

    public ErrorCode Heartbeat(string groupId, int generation, string memberId, string? groupInstanceId) =>
        coordinator.Heartbeat(groupId, generation, memberId, groupInstanceId);

    public Task<(ErrorCode Error, IReadOnlyList<(string MemberId, string? GroupInstanceId, ErrorCode Error)> Members)> LeaveGroupAsync(
        string groupId, IReadOnlyList<(string MemberId, string? GroupInstanceId)> leaving) => coordinator.LeaveGroupAsync(groupId, leaving);

    public IReadOnlyList<GroupOverview> ListGroups() => coordinator.ListGroups();

    public GroupDescription DescribeGroup(string groupId) => coordinator.DescribeGroup(groupId);

    public Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken cancellationToken) => coordinator.DeleteGroupAsync(groupId, cancellationToken);

    public Task<IReadOnlyList<PartitionError>> CommitOffsetsAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        IReadOnlyList<OffsetCommitEntry> entries, CancellationToken cancellationToken) =>
        coordinator.CommitOffsetsAsync(groupId, generation, memberId, groupInstanceId, entries, cancellationToken);

    public IReadOnlyList<CommittedOffset> FetchOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions) =>
        coordinator.FetchOffsets(groupId, partitions);

    public Task<(ErrorCode Error, IReadOnlyList<PartitionError> Partitions)> DeleteOffsetsAsync(string groupId,
        IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken) =>
        coordinator.DeleteOffsetsAsync(groupId, partitions, cancellationToken);

    public Task OnTopicDeletedAsync(string topic, CancellationToken cancellationToken) => coordinator.OnTopicDeletedAsync(topic, cancellationToken);
}
