using Cairn.Protocol;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups;

/// <summary>
/// The classic consumer-group coordinator as the handlers see it: membership (JoinGroup/SyncGroup/Heartbeat/LeaveGroup,
/// see <see cref="GroupMembership"/>) and committed offsets made durable in an <see cref="IGroupStore"/> before they are
/// acknowledged (see <see cref="CommittedOffsets"/>), over one set of groups. Lag is the admin side's business.
/// </summary>
internal sealed class GroupCoordinator : IAsyncDisposable
{
    private readonly GroupRegistry _groups = new();
    private readonly IGroupStore _store;
    private readonly GroupMembership _membership;
    private readonly CommittedOffsets _offsets;

    private GroupCoordinator(IGroupStore store, LogManager logs, GroupCoordinatorOptions options, TimeProvider time, ILogger logger)
    {
        _store = store;
        _membership = new GroupMembership(_groups, store, options, time, logger);
        _offsets = new CommittedOffsets(_groups, store, logs, options, time, logger);
    }

    public IGroupStore Store => _store;

    /// <summary>Loads groups and committed offsets from the store. Members of loaded groups get a fresh session timeout to come back.
    /// The coordinator owns <paramref name="store"/>: it is disposed when the coordinator is, or when starting fails.</summary>
    public static async Task<GroupCoordinator> StartAsync(IGroupStore store, LogManager logs, GroupCoordinatorOptions options, TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        try
        {
            await store.InitializeAsync(cancellationToken);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        var coordinator = new GroupCoordinator(store, logs, options, time, logger);
        foreach (var stored in await store.GetGroupsAsync(cancellationToken)) coordinator._membership.Restore(stored);
        int offsets = 0;
        foreach (var (groupId, committed) in await store.GetAllOffsetsAsync(cancellationToken)) offsets += coordinator._offsets.Restore(groupId, committed);
        logger.LogInformation("group coordinator loaded {Groups} group(s) and {Offsets} committed offset(s)", coordinator.GroupCount, offsets);
        return coordinator;
    }

    public int GroupCount => _groups.Count;

    // ------------------------------------------------------------------ membership

    public Task<JoinGroupResult> JoinGroupAsync(JoinGroupRequestData request) => _membership.JoinGroupAsync(request);

    public Task<SyncGroupResult> SyncGroupAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments) =>
        _membership.SyncGroupAsync(groupId, generation, memberId, groupInstanceId, protocolType, protocolName, assignments);

    public ErrorCode Heartbeat(string groupId, int generation, string memberId, string? groupInstanceId) =>
        _membership.Heartbeat(groupId, generation, memberId, groupInstanceId);

    /// <summary>Removes members (by member id, or by group.instance.id for static members). Returns a per-member error.</summary>
    public Task<(ErrorCode Error, IReadOnlyList<(string MemberId, string? GroupInstanceId, ErrorCode Error)> Members)> LeaveGroupAsync(
        string groupId, IReadOnlyList<(string MemberId, string? GroupInstanceId)> leaving) =>
        _membership.LeaveGroupAsync(groupId, leaving);

    public IReadOnlyList<GroupOverview> ListGroups() => _membership.ListGroups();

    public GroupDescription DescribeGroup(string groupId) => _membership.DescribeGroup(groupId);

    /// <summary>DeleteGroups: only groups without members; removes their offsets too.</summary>
    public Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default) =>
        _membership.DeleteGroupAsync(groupId, cancellationToken);

    // ------------------------------------------------------------------ committed offsets

    /// <summary>
    /// Commits offsets for a member of the current generation, or (generation -1, empty member id) for a
    /// group without active members. Returns a group-level error (applied to every partition) or per-partition results.
    /// </summary>
    public Task<IReadOnlyList<PartitionError>> CommitOffsetsAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        IReadOnlyList<OffsetCommitEntry> entries, CancellationToken cancellationToken = default) =>
        _offsets.CommitAsync(groupId, generation, memberId, groupInstanceId, entries, cancellationToken);

    /// <summary>Committed offsets of a group: of the given partitions (unknown ones absent), or all when null.</summary>
    public IReadOnlyList<CommittedOffset> FetchOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions) =>
        _offsets.Fetch(groupId, partitions);

    /// <summary>OffsetDelete (KIP-496): only partitions of topics no active consumer member subscribes to.</summary>
    public Task<(ErrorCode Error, IReadOnlyList<PartitionError> Partitions)> DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions,
        CancellationToken cancellationToken = default) =>
        _offsets.DeleteAsync(groupId, partitions, cancellationToken);

    /// <summary>Drops committed offsets of a deleted topic from every group.</summary>
    public Task OnTopicDeletedAsync(string topic, CancellationToken cancellationToken = default) => _offsets.OnTopicDeletedAsync(topic, cancellationToken);

    /// <summary>Runs offset retention now (it also runs every offsets.retention.check.interval); returns how many offsets expired.</summary>
    public Task<int> ExpireOffsetsAsync(CancellationToken cancellationToken = default) => _offsets.ExpireAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _offsets.Dispose();
        _membership.Shutdown();
        await _store.DisposeAsync();
    }
}
