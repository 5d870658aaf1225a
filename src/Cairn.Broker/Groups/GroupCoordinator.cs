using System.Text;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups;

public sealed record OffsetCommitEntry(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata);

public sealed record PartitionError(string Topic, int Partition, ErrorCode Error);

public sealed record GroupOverview(string GroupId, string ProtocolType, GroupState State);

public sealed record MemberDescription(string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, byte[] Metadata, byte[] Assignment);

public sealed record GroupDescription(string GroupId, GroupState State, string ProtocolType, string Protocol, IReadOnlyList<MemberDescription> Members);

/// <summary>One partition's committed position next to its log: the numbers lag is made of.</summary>
public sealed record PartitionLag(
    string Topic,
    int Partition,
    long CommittedOffset,
    long LogStartOffset,
    long LogEndOffset,
    long Lag,
    string? Metadata,
    DateTimeOffset? CommitTime,
    /// <summary>Timestamp of the first record not yet consumed (the one at the committed offset); null when caught up.</summary>
    DateTimeOffset? CommittedRecordTimestamp);

/// <summary>
/// The classic consumer-group coordinator: JoinGroup/SyncGroup/Heartbeat/LeaveGroup state machine with
/// session and rebalance timeouts, static membership, and committed offsets kept in memory and made
/// durable in an <see cref="IGroupStore"/> before they are acknowledged.
/// </summary>
public sealed class GroupCoordinator : IAsyncDisposable
{
    private readonly Dictionary<string, ConsumerGroup> _groups = new(StringComparer.Ordinal);
    private readonly IGroupStore _store;
    private readonly LogManager _logs;
    private readonly GroupCoordinatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _retentionTimer;
    private long _commitSequence;

    private GroupCoordinator(IGroupStore store, LogManager logs, GroupCoordinatorOptions options, TimeProvider time, ILogger logger)
    {
        _store = store;
        _logs = logs;
        _options = options;
        _time = time;
        _logger = logger;
        _retentionTimer = time.CreateTimer(_ => _ = ExpireOffsetsSafelyAsync(), null, options.OffsetsRetentionCheckInterval, options.OffsetsRetentionCheckInterval);
    }

    public IGroupStore Store => _store;

    /// <summary>Loads groups and committed offsets from the store. Members of loaded groups get a fresh session timeout to come back.</summary>
    public static async Task<GroupCoordinator> StartAsync(IGroupStore store, LogManager logs, GroupCoordinatorOptions options, TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        await store.InitializeAsync(cancellationToken);
        var coordinator = new GroupCoordinator(store, logs, options, time, logger);
        foreach (var stored in await store.GetGroupsAsync(cancellationToken))
        {
            var group = coordinator.GetOrCreate(stored.GroupId);
            lock (group)
            {
                group.ProtocolType = stored.ProtocolType;
                group.ProtocolName = stored.Protocol;
                group.Generation = stored.Generation;
                group.LeaderId = stored.Leader;
                group.EmptySince = stored.EmptySince;
                foreach (var m in stored.Members)
                {
                    var member = new GroupMember(m.MemberId, m.GroupInstanceId)
                    {
                        ClientId = m.ClientId, ClientHost = m.ClientHost, SessionTimeoutMs = m.SessionTimeoutMs,
                        RebalanceTimeoutMs = m.RebalanceTimeoutMs, Protocols = m.Protocols, Assignment = m.Assignment,
                    };
                    group.Members[member.MemberId] = member;
                    if (member.GroupInstanceId is not null) group.StaticMembers[member.GroupInstanceId] = member.MemberId;
                    coordinator.ScheduleSessionExpiry(group, member);
                }
                group.State = group.Members.Count > 0 ? GroupState.Stable : GroupState.Empty;
            }
        }
        int offsets = 0;
        foreach (var (groupId, committed) in await store.GetAllOffsetsAsync(cancellationToken))
        {
            var group = coordinator.GetOrCreate(groupId);
            lock (group)
                foreach (var c in committed) { group.Offsets[(c.Topic, c.Partition)] = c; offsets++; }
        }
        logger.LogInformation("group coordinator loaded {Groups} group(s) and {Offsets} committed offset(s)", coordinator.GroupCount, offsets);
        return coordinator;
    }

    public int GroupCount { get { lock (_groups) return _groups.Count; } }

    private ConsumerGroup GetOrCreate(string groupId)
    {
        lock (_groups)
        {
            if (!_groups.TryGetValue(groupId, out var group)) _groups[groupId] = group = new ConsumerGroup(groupId);
            return group;
        }
    }

    private ConsumerGroup? Find(string groupId)
    {
        lock (_groups) return _groups.GetValueOrDefault(groupId);
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    // ------------------------------------------------------------------ JoinGroup

    public Task<JoinGroupResult> JoinGroupAsync(JoinGroupRequestData request)
    {
        if (string.IsNullOrEmpty(request.GroupId)) return Task.FromResult(new JoinGroupResult(ErrorCode.InvalidGroupId, MemberId: request.MemberId));
        if (request.SessionTimeoutMs < _options.MinSessionTimeout.TotalMilliseconds || request.SessionTimeoutMs > _options.MaxSessionTimeout.TotalMilliseconds)
            return Task.FromResult(new JoinGroupResult(ErrorCode.InvalidSessionTimeout, MemberId: request.MemberId));

        var group = request.MemberId == "" ? GetOrCreate(request.GroupId) : Find(request.GroupId);
        if (group is null) return Task.FromResult(new JoinGroupResult(ErrorCode.UnknownMemberId, MemberId: request.MemberId));

        Task<JoinGroupResult> result;
        bool persist = false;
        lock (group)
        {
            if (group.State == GroupState.Dead) return Task.FromResult(new JoinGroupResult(ErrorCode.CoordinatorNotAvailable, MemberId: request.MemberId));
            if (!group.SupportsProtocols(request.ProtocolType, request.Protocols))
                return Task.FromResult(new JoinGroupResult(ErrorCode.InconsistentGroupProtocol, MemberId: request.MemberId));
            result = request.MemberId == ""
                ? JoinUnknownMember(group, request, ref persist)
                : JoinKnownMember(group, request);
        }
        if (persist) _ = PersistSafelyAsync(group);
        return result;
    }

    private Task<JoinGroupResult> JoinUnknownMember(ConsumerGroup group, JoinGroupRequestData request, ref bool persist)
    {
        string newMemberId = (request.GroupInstanceId ?? request.ClientId) + "-" + Guid.NewGuid().ToString("N");
        if (request.GroupInstanceId is { } instanceId && group.StaticMembers.TryGetValue(instanceId, out var oldMemberId)
            && group.Members.TryGetValue(oldMemberId, out var existing))
        {
            // A static member restarted: it takes over its old identity under a new member id, and the old one is fenced.
            group.Members.Remove(oldMemberId);
            existing.MemberId = newMemberId;
            group.Members[newMemberId] = existing;
            group.StaticMembers[instanceId] = newMemberId;
            if (group.LeaderId == oldMemberId) group.LeaderId = newMemberId;
            existing.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.FencedInstanceId, MemberId: oldMemberId));
            existing.AwaitingSync?.TrySetResult(new SyncGroupResult(ErrorCode.FencedInstanceId));
            existing.AwaitingJoin = null;
            existing.AwaitingSync = null;
            Refresh(existing, request);
            if (group.State == GroupState.Stable && existing.SameProtocols(request.Protocols))
            {
                // Same subscription: hand back the current generation without a rebalance (KIP-345).
                ScheduleSessionExpiry(group, existing);
                persist = true;
                bool isLeader = group.LeaderId == newMemberId;
                return Task.FromResult(new JoinGroupResult(ErrorCode.None, group.Generation, group.ProtocolType, group.ProtocolName,
                    group.LeaderId!, newMemberId, isLeader ? CurrentMembers(group) : [], SkipAssignment: isLeader));
            }
            existing.Protocols = request.Protocols;
            var waiting = AwaitJoin(existing);
            PrepareRebalance(group, $"static member {instanceId} rejoined with new metadata");
            TryCompleteJoin(group);
            return waiting;
        }

        if (group.Members.Count >= _options.MaxGroupSize)
            return Task.FromResult(new JoinGroupResult(ErrorCode.GroupMaxSizeReached, MemberId: ""));

        if (request.RequireKnownMemberId && request.GroupInstanceId is null)
        {
            // JoinGroup v4+: hand out a member id first; the member joins again with it (KIP-394).
            var timer = _time.CreateTimer(_ => ExpirePending(group, newMemberId), null, TimeSpan.FromMilliseconds(request.SessionTimeoutMs), Timeout.InfiniteTimeSpan);
            group.PendingMembers[newMemberId] = timer;
            return Task.FromResult(new JoinGroupResult(ErrorCode.MemberIdRequired, MemberId: newMemberId));
        }
        return AddMemberAndRebalance(group, newMemberId, request);
    }

    private Task<JoinGroupResult> JoinKnownMember(ConsumerGroup group, JoinGroupRequestData request)
    {
        if (request.GroupInstanceId is { } instanceId && group.StaticMembers.TryGetValue(instanceId, out var current) && current != request.MemberId)
            return Task.FromResult(new JoinGroupResult(ErrorCode.FencedInstanceId, MemberId: request.MemberId));

        if (group.PendingMembers.Remove(request.MemberId, out var pendingTimer))
        {
            pendingTimer.Dispose();
            return AddMemberAndRebalance(group, request.MemberId, request);
        }
        if (!group.Members.TryGetValue(request.MemberId, out var member))
            return Task.FromResult(new JoinGroupResult(ErrorCode.UnknownMemberId, MemberId: request.MemberId));

        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                Refresh(member, request);
                member.Protocols = request.Protocols;
                var waiting = AwaitJoin(member);
                TryCompleteJoin(group);
                return waiting;
            case GroupState.CompletingRebalance when member.SameProtocols(request.Protocols):
                // The member missed its JoinGroup response: send it again.
                return Task.FromResult(JoinResponseFor(group, member));
            case GroupState.Stable when member.SameProtocols(request.Protocols) && group.LeaderId != member.MemberId:
                return Task.FromResult(JoinResponseFor(group, member));
            default:
                // Changed metadata, or the leader rejoining from Stable: a new generation is needed.
                Refresh(member, request);
                member.Protocols = request.Protocols;
                var rejoin = AwaitJoin(member);
                PrepareRebalance(group, $"member {member.MemberId} rejoined");
                TryCompleteJoin(group); // it may have been the last member to come back
                return rejoin;
        }
    }

    private Task<JoinGroupResult> AddMemberAndRebalance(ConsumerGroup group, string memberId, JoinGroupRequestData request)
    {
        var member = new GroupMember(memberId, request.GroupInstanceId) { IsNew = true, Protocols = request.Protocols };
        Refresh(member, request);
        if (group.Members.Count == 0) group.ProtocolType = request.ProtocolType;
        group.Members[memberId] = member;
        if (request.GroupInstanceId is not null) group.StaticMembers[request.GroupInstanceId] = memberId;
        var waiting = AwaitJoin(member);
        if (group.State == GroupState.PreparingRebalance && group.InitialJoinDelay) ExtendInitialDelay(group);
        else PrepareRebalance(group, $"member {memberId} joined");
        TryCompleteJoin(group);
        return waiting;
    }

    private static void Refresh(GroupMember member, JoinGroupRequestData request)
    {
        member.ClientId = request.ClientId;
        member.ClientHost = request.ClientHost;
        member.SessionTimeoutMs = request.SessionTimeoutMs;
        member.RebalanceTimeoutMs = request.RebalanceTimeoutMs;
    }

    private static Task<JoinGroupResult> AwaitJoin(GroupMember member)
    {
        var previous = member.AwaitingJoin;
        member.AwaitingJoin = new TaskCompletionSource<JoinGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A duplicate join from the same member replaces the older one; the older request gets an error.
        previous?.TrySetResult(new JoinGroupResult(ErrorCode.RebalanceInProgress, MemberId: member.MemberId));
        return member.AwaitingJoin.Task;
    }

    private void PrepareRebalance(ConsumerGroup group, string reason)
    {
        // Members waiting for an assignment of the old generation must rejoin.
        foreach (var m in group.Members.Values)
        {
            m.AwaitingSync?.TrySetResult(new SyncGroupResult(ErrorCode.RebalanceInProgress));
            m.AwaitingSync = null;
        }
        if (group.State == GroupState.PreparingRebalance) return;
        bool initial = group.State == GroupState.Empty;
        group.State = GroupState.PreparingRebalance;
        group.RebalanceStarted = Now;
        group.InitialJoinDelay = initial && _options.InitialRebalanceDelay > TimeSpan.Zero;
        var delay = group.InitialJoinDelay ? Min(_options.InitialRebalanceDelay, RebalanceTimeout(group)) : RebalanceTimeout(group);
        group.RebalanceTimer?.Dispose();
        group.RebalanceTimer = _time.CreateTimer(_ => OnRebalanceTimeout(group), null, delay, Timeout.InfiniteTimeSpan);
        _logger.LogInformation("group {Group}: preparing rebalance for generation {Next} ({Reason})", group.GroupId, group.Generation + 1, reason);
    }

    private void ExtendInitialDelay(ConsumerGroup group)
    {
        // Each new member during the initial delay restarts it, up to the rebalance timeout (Kafka's InitialDelayedJoin).
        var elapsed = Now - group.RebalanceStarted;
        var remaining = RebalanceTimeout(group) - elapsed;
        var delay = Min(_options.InitialRebalanceDelay, remaining);
        group.RebalanceTimer?.Change(delay > TimeSpan.Zero ? delay : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    private static TimeSpan RebalanceTimeout(ConsumerGroup group) =>
        TimeSpan.FromMilliseconds(group.Members.Count == 0 ? 0 : group.Members.Values.Max(m => m.RebalanceTimeoutMs));

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private void OnRebalanceTimeout(ConsumerGroup group)
    {
        bool persist;
        lock (group)
        {
            if (group.State != GroupState.PreparingRebalance) return;
            if (group.InitialJoinDelay)
            {
                group.InitialJoinDelay = false;
                if (!group.AllMembersJoined)
                {
                    var remaining = RebalanceTimeout(group) - (Now - group.RebalanceStarted);
                    group.RebalanceTimer?.Change(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
                    return;
                }
            }
            // Whoever has not rejoined by now is out of the group.
            foreach (var m in group.Members.Values.Where(m => m.AwaitingJoin is null).ToList())
            {
                _logger.LogInformation("group {Group}: member {Member} did not rejoin within the rebalance timeout", group.GroupId, m.MemberId);
                RemoveMember(group, m);
            }
            foreach (var (id, timer) in group.PendingMembers) timer.Dispose();
            group.PendingMembers.Clear();
            persist = CompleteJoin(group);
        }
        if (persist) _ = PersistSafelyAsync(group);
    }

    private void TryCompleteJoin(ConsumerGroup group)
    {
        if (group.State == GroupState.PreparingRebalance && !group.InitialJoinDelay && group.AllMembersJoined)
        {
            if (CompleteJoin(group)) _ = PersistSafelyAsync(group);
        }
    }

    /// <summary>Starts the next generation and answers every waiting JoinGroup. Returns whether the group must be persisted.</summary>
    private bool CompleteJoin(ConsumerGroup group)
    {
        group.RebalanceTimer?.Dispose();
        group.RebalanceTimer = null;
        group.InitialJoinDelay = false;
        group.Generation++;
        if (group.Members.Count == 0)
        {
            group.State = GroupState.Empty;
            group.ProtocolName = null;
            group.LeaderId = null;
            group.EmptySince = Now;
            _logger.LogInformation("group {Group}: generation {Generation} is empty", group.GroupId, group.Generation);
            return true;
        }
        group.ProtocolName = group.SelectProtocol();
        if (group.LeaderId is null || !group.Members.ContainsKey(group.LeaderId)) group.LeaderId = group.Members.Keys.First();
        group.State = GroupState.CompletingRebalance;
        group.EmptySince = null;
        foreach (var m in group.Members.Values)
        {
            m.IsNew = false;
            var waiting = m.AwaitingJoin;
            m.AwaitingJoin = null;
            waiting?.TrySetResult(JoinResponseFor(group, m));
            ScheduleSessionExpiry(group, m);
        }
        _logger.LogInformation("group {Group}: generation {Generation} with {Members} member(s), protocol {Protocol}, leader {Leader}",
            group.GroupId, group.Generation, group.Members.Count, group.ProtocolName, group.LeaderId);
        return false;
    }

    private static JoinGroupResult JoinResponseFor(ConsumerGroup group, GroupMember member)
    {
        bool isLeader = group.LeaderId == member.MemberId;
        return new JoinGroupResult(ErrorCode.None, group.Generation, group.ProtocolType, group.ProtocolName, group.LeaderId!, member.MemberId,
            isLeader ? CurrentMembers(group) : []);
    }

    private static List<JoinedMember> CurrentMembers(ConsumerGroup group) =>
        group.Members.Values.Select(m => new JoinedMember(m.MemberId, m.GroupInstanceId, m.MetadataFor(group.ProtocolName!) ?? [])).ToList();

    private void ExpirePending(ConsumerGroup group, string memberId)
    {
        lock (group)
        {
            if (!group.PendingMembers.Remove(memberId, out var timer)) return;
            timer.Dispose();
            TryCompleteJoin(group);
        }
    }

    // ------------------------------------------------------------------ SyncGroup

    public async Task<SyncGroupResult> SyncGroupAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments)
    {
        var group = Find(groupId);
        if (group is null) return new SyncGroupResult(ErrorCode.UnknownMemberId);
        Task<SyncGroupResult> result;
        bool persist = false;
        lock (group)
        {
            var error = CheckMember(group, memberId, groupInstanceId);
            if (error != ErrorCode.None) return new SyncGroupResult(error);
            if (generation != group.Generation) return new SyncGroupResult(ErrorCode.IllegalGeneration);
            if ((protocolType is not null && protocolType != group.ProtocolType) || (protocolName is not null && protocolName != group.ProtocolName))
                return new SyncGroupResult(ErrorCode.InconsistentGroupProtocol);
            var member = group.Members[memberId];
            switch (group.State)
            {
                case GroupState.PreparingRebalance:
                    return new SyncGroupResult(ErrorCode.RebalanceInProgress);
                case GroupState.Stable:
                    ScheduleSessionExpiry(group, member);
                    return new SyncGroupResult(ErrorCode.None, group.ProtocolType, group.ProtocolName, member.Assignment);
                case GroupState.CompletingRebalance:
                    member.AwaitingSync = new TaskCompletionSource<SyncGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                    result = member.AwaitingSync.Task;
                    ScheduleSessionExpiry(group, member);
                    if (memberId == group.LeaderId)
                    {
                        var byMember = new Dictionary<string, byte[]>();
                        foreach (var (id, bytes) in assignments) byMember[id] = bytes;
                        foreach (var m in group.Members.Values) m.Assignment = byMember.GetValueOrDefault(m.MemberId) ?? [];
                        group.State = GroupState.Stable;
                        persist = true;
                    }
                    break;
                default:
                    return new SyncGroupResult(ErrorCode.UnknownMemberId);
            }
        }
        if (persist)
        {
            // The assignment is made durable before members act on it, so a restart hands out the same one.
            await PersistSafelyAsync(group);
            lock (group)
            {
                if (group.State == GroupState.Stable && group.Generation == generation)
                {
                    foreach (var m in group.Members.Values)
                    {
                        m.AwaitingSync?.TrySetResult(new SyncGroupResult(ErrorCode.None, group.ProtocolType, group.ProtocolName, m.Assignment));
                        m.AwaitingSync = null;
                    }
                }
            }
        }
        return await result;
    }

    private static ErrorCode CheckMember(ConsumerGroup group, string memberId, string? groupInstanceId)
    {
        if (group.State == GroupState.Dead) return ErrorCode.CoordinatorNotAvailable;
        if (groupInstanceId is not null && group.StaticMembers.TryGetValue(groupInstanceId, out var current) && current != memberId)
            return ErrorCode.FencedInstanceId;
        if (!group.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
        return ErrorCode.None;
    }

    // ------------------------------------------------------------------ Heartbeat and leaving

    public ErrorCode Heartbeat(string groupId, int generation, string memberId, string? groupInstanceId)
    {
        var group = Find(groupId);
        if (group is null) return ErrorCode.UnknownMemberId;
        lock (group)
        {
            var error = CheckMember(group, memberId, groupInstanceId);
            if (error != ErrorCode.None) return error;
            var member = group.Members[memberId];
            switch (group.State)
            {
                case GroupState.PreparingRebalance:
                    ScheduleSessionExpiry(group, member);
                    return ErrorCode.RebalanceInProgress;
                case GroupState.CompletingRebalance or GroupState.Stable:
                    if (generation != group.Generation) return ErrorCode.IllegalGeneration;
                    ScheduleSessionExpiry(group, member);
                    return ErrorCode.None;
                default:
                    return ErrorCode.UnknownMemberId;
            }
        }
    }

    /// <summary>Removes members (by member id, or by group.instance.id for static members). Returns a per-member error.</summary>
    public async Task<(ErrorCode Error, IReadOnlyList<(string MemberId, string? GroupInstanceId, ErrorCode Error)> Members)> LeaveGroupAsync(
        string groupId, IReadOnlyList<(string MemberId, string? GroupInstanceId)> leaving)
    {
        var group = Find(groupId);
        if (group is null)
            return (ErrorCode.None, leaving.Select(l => (l.MemberId, l.GroupInstanceId, ErrorCode.UnknownMemberId)).ToList());
        var results = new List<(string, string?, ErrorCode)>();
        bool persist = false;
        lock (group)
        {
            if (group.State == GroupState.Dead) return (ErrorCode.CoordinatorNotAvailable, []);
            bool removedAny = false;
            foreach (var (memberId, instanceId) in leaving)
            {
                string? id = memberId;
                if (instanceId is not null)
                {
                    if (!group.StaticMembers.TryGetValue(instanceId, out var current)) { results.Add((memberId, instanceId, ErrorCode.UnknownMemberId)); continue; }
                    if (memberId != "" && memberId != current) { results.Add((memberId, instanceId, ErrorCode.FencedInstanceId)); continue; }
                    id = current;
                }
                if (group.PendingMembers.Remove(id, out var pending))
                {
                    pending.Dispose();
                    results.Add((memberId, instanceId, ErrorCode.None));
                    removedAny = true;
                    continue;
                }
                if (!group.Members.TryGetValue(id, out var member)) { results.Add((memberId, instanceId, ErrorCode.UnknownMemberId)); continue; }
                _logger.LogInformation("group {Group}: member {Member} left", group.GroupId, id);
                RemoveMember(group, member);
                results.Add((memberId, instanceId, ErrorCode.None));
                removedAny = true;
            }
            if (removedAny) persist = AfterMembershipChange(group, "members left");
        }
        if (persist) await PersistSafelyAsync(group);
        return (ErrorCode.None, results);
    }

    private void RemoveMember(ConsumerGroup group, GroupMember member)
    {
        group.Members.Remove(member.MemberId);
        if (member.GroupInstanceId is not null && group.StaticMembers.GetValueOrDefault(member.GroupInstanceId) == member.MemberId)
            group.StaticMembers.Remove(member.GroupInstanceId);
        member.SessionTimer?.Dispose();
        member.SessionTimer = null;
        member.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.UnknownMemberId, MemberId: member.MemberId));
        member.AwaitingSync?.TrySetResult(new SyncGroupResult(ErrorCode.UnknownMemberId));
        member.AwaitingJoin = null;
        member.AwaitingSync = null;
        if (group.LeaderId == member.MemberId) group.LeaderId = null;
    }

    /// <summary>After members left or expired: rebalance the rest, or become empty. Returns whether to persist.</summary>
    private bool AfterMembershipChange(ConsumerGroup group, string reason)
    {
        switch (group.State)
        {
            case GroupState.Stable or GroupState.CompletingRebalance:
                if (group.Members.Count == 0)
                {
                    group.Generation++;
                    group.State = GroupState.Empty;
                    group.ProtocolName = null;
                    group.LeaderId = null;
                    group.EmptySince = Now;
                    _logger.LogInformation("group {Group}: now empty (generation {Generation})", group.GroupId, group.Generation);
                    return true;
                }
                PrepareRebalance(group, reason);
                return false;
            case GroupState.PreparingRebalance:
                if (group.Members.Count == 0) return CompleteJoin(group);
                TryCompleteJoin(group);
                return false;
            default:
                return false;
        }
    }

    private void ScheduleSessionExpiry(ConsumerGroup group, GroupMember member)
    {
        var timeout = TimeSpan.FromMilliseconds(member.SessionTimeoutMs);
        if (member.SessionTimer is null) member.SessionTimer = _time.CreateTimer(_ => OnSessionTimeout(group, member), null, timeout, Timeout.InfiniteTimeSpan);
        else member.SessionTimer.Change(timeout, Timeout.InfiniteTimeSpan);
    }

    private void OnSessionTimeout(ConsumerGroup group, GroupMember member)
    {
        bool persist;
        lock (group)
        {
            if (!group.Members.TryGetValue(member.MemberId, out var current) || !ReferenceEquals(current, member)) return;
            // A member parked in JoinGroup is alive; the rebalance timeout governs it instead.
            if (member.AwaitingJoin is not null && !member.IsNew)
            {
                ScheduleSessionExpiry(group, member);
                return;
            }
            _logger.LogInformation("group {Group}: member {Member} session timed out", group.GroupId, member.MemberId);
            RemoveMember(group, member);
            persist = AfterMembershipChange(group, $"member {member.MemberId} session timed out");
        }
        if (persist) _ = PersistSafelyAsync(group);
    }

    // ------------------------------------------------------------------ Offsets

    /// <summary>
    /// Commits offsets for a member of the current generation, or (generation -1, empty member id) for a
    /// group without active members. Returns a group-level error (applied to every partition) or per-partition results.
    /// </summary>
    public async Task<IReadOnlyList<PartitionError>> CommitOffsetsAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        IReadOnlyList<OffsetCommitEntry> entries, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(groupId)) return AllFailed(entries, ErrorCode.InvalidGroupId);
        var group = generation < 0 && memberId == "" ? GetOrCreate(groupId) : Find(groupId);
        if (group is null) return AllFailed(entries, generation < 0 ? ErrorCode.UnknownMemberId : ErrorCode.IllegalGeneration);

        var results = new PartitionError[entries.Count];
        var accepted = new List<CommittedOffset>(entries.Count);
        long sequence;
        lock (group)
        {
            var error = CheckCommit(group, generation, memberId, groupInstanceId);
            if (error != ErrorCode.None) return AllFailed(entries, error);
            var now = Now;
            for (int i = 0; i < entries.Count; i++)
            {
                var e = entries[i];
                var partitionError = ErrorCode.None;
                Guid topicId = Guid.Empty;
                if (e.Metadata is not null && Encoding.UTF8.GetByteCount(e.Metadata) > _options.MaxOffsetMetadataBytes) partitionError = ErrorCode.OffsetMetadataTooLarge;
                else if (!_logs.TryGetTopic(e.Topic, out var topic) || e.Partition < 0 || e.Partition >= topic.PartitionCount) partitionError = ErrorCode.UnknownTopicOrPartition;
                else topicId = topic.Id;
                results[i] = new PartitionError(e.Topic, e.Partition, partitionError);
                if (partitionError == ErrorCode.None)
                    accepted.Add(new CommittedOffset(e.Topic, topicId, e.Partition, e.Offset, e.LeaderEpoch, e.Metadata, now));
            }
            sequence = ++_commitSequence;
        }
        if (accepted.Count == 0) return results;
        await _store.CommitOffsetsAsync([new GroupOffsetCommit(groupId, accepted)], cancellationToken);
        lock (group)
        {
            foreach (var c in accepted)
            {
                var key = (c.Topic, c.Partition);
                if (group.OffsetSequence.GetValueOrDefault(key) > sequence) continue; // a newer commit already landed
                group.Offsets[key] = c;
                group.OffsetSequence[key] = sequence;
            }
        }
        return results;
    }

    private static ErrorCode CheckCommit(ConsumerGroup group, int generation, string memberId, string? groupInstanceId)
    {
        if (group.State == GroupState.Dead) return ErrorCode.CoordinatorNotAvailable;
        if (generation < 0 && memberId == "" && group.State == GroupState.Empty) return ErrorCode.None; // a standalone (manual assignment) commit
        if (groupInstanceId is not null && group.StaticMembers.TryGetValue(groupInstanceId, out var current) && current != memberId)
            return ErrorCode.FencedInstanceId;
        if (group.State == GroupState.CompletingRebalance) return ErrorCode.RebalanceInProgress;
        if (!group.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
        if (generation != group.Generation) return ErrorCode.IllegalGeneration;
        return ErrorCode.None;
    }

    private static PartitionError[] AllFailed(IReadOnlyList<OffsetCommitEntry> entries, ErrorCode error) =>
        entries.Select(e => new PartitionError(e.Topic, e.Partition, error)).ToArray();

    /// <summary>Committed offsets of a group: of the given partitions (unknown ones absent), or all when null.</summary>
    public IReadOnlyList<CommittedOffset> FetchOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions)
    {
        var group = Find(groupId);
        if (group is null) return [];
        lock (group)
        {
            if (partitions is null) return group.Offsets.Values.OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition).ToList();
            var found = new List<CommittedOffset>(partitions.Count);
            foreach (var p in partitions) if (group.Offsets.TryGetValue(p, out var c)) found.Add(c);
            return found;
        }
    }

    /// <summary>OffsetDelete (KIP-496): only partitions of topics no active consumer member subscribes to.</summary>
    public async Task<(ErrorCode Error, IReadOnlyList<PartitionError> Partitions)> DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions,
        CancellationToken cancellationToken = default)
    {
        var group = Find(groupId);
        if (group is null) return (ErrorCode.GroupIdNotFound, []);
        var results = new List<PartitionError>();
        var deletable = new List<(string, int)>();
        lock (group)
        {
            if (group.State == GroupState.Dead) return (ErrorCode.GroupIdNotFound, []);
            HashSet<string>? subscribed = null;
            if (!group.IsEmpty)
            {
                if (group.ProtocolType != "consumer") return (ErrorCode.NonEmptyGroup, []);
                subscribed = SubscribedTopics(group);
            }
            foreach (var p in partitions)
            {
                if (subscribed?.Contains(p.Topic) == true) { results.Add(new PartitionError(p.Topic, p.Partition, ErrorCode.GroupSubscribedToTopic)); continue; }
                if (!_logs.TryGetTopic(p.Topic, out _)) { results.Add(new PartitionError(p.Topic, p.Partition, ErrorCode.UnknownTopicOrPartition)); continue; }
                results.Add(new PartitionError(p.Topic, p.Partition, ErrorCode.None));
                deletable.Add(p);
            }
        }
        if (deletable.Count > 0)
        {
            await _store.DeleteOffsetsAsync(groupId, deletable, cancellationToken);
            lock (group) foreach (var p in deletable) { group.Offsets.Remove(p); group.OffsetSequence.Remove(p); }
        }
        return (ErrorCode.None, results);
    }

    private static HashSet<string> SubscribedTopics(ConsumerGroup group)
    {
        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in group.Members.Values)
        {
            var metadata = group.ProtocolName is null ? m.Protocols.FirstOrDefault()?.Metadata : m.MetadataFor(group.ProtocolName);
            if (metadata is null || metadata.Length == 0) continue;
            try
            {
                topics.UnionWith(ConsumerProtocol.ReadSubscription(metadata).Topics);
            }
            catch (Exception e) when (e is Protocol.Primitives.MalformedMessageException)
            {
                // Unreadable subscription: be safe and treat every assigned topic as subscribed.
                try { topics.UnionWith(ConsumerProtocol.ReadAssignment(m.Assignment).AssignedPartitions.Select(t => t.Topic)); }
                catch (Protocol.Primitives.MalformedMessageException) { }
            }
        }
        return topics;
    }

    // ------------------------------------------------------------------ Groups admin

    public IReadOnlyList<GroupOverview> ListGroups()
    {
        ConsumerGroup[] groups;
        lock (_groups) groups = _groups.Values.ToArray();
        var list = new List<GroupOverview>(groups.Length);
        foreach (var g in groups)
            lock (g)
                if (g.State != GroupState.Dead) list.Add(new GroupOverview(g.GroupId, g.ProtocolType ?? "", g.State));
        return list.OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
    }

    public GroupDescription DescribeGroup(string groupId)
    {
        var group = Find(groupId);
        if (group is null) return new GroupDescription(groupId, GroupState.Dead, "", "", []);
        lock (group)
        {
            // Member metadata and assignments are shown only once a generation is formed, as Kafka does.
            bool showDetails = group.State is GroupState.Stable or GroupState.CompletingRebalance;
            return new GroupDescription(group.GroupId, group.State, group.ProtocolType ?? "", showDetails ? group.ProtocolName ?? "" : "",
                group.Members.Values.Select(m => new MemberDescription(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost,
                    showDetails ? m.MetadataFor(group.ProtocolName!) ?? [] : [],
                    group.State == GroupState.Stable ? m.Assignment : [])).ToList());
        }
    }

    /// <summary>DeleteGroups: only groups without members; removes their offsets too.</summary>
    public async Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        var group = Find(groupId);
        if (group is null) return ErrorCode.GroupIdNotFound;
        lock (group)
        {
            if (group.State == GroupState.Dead) return ErrorCode.GroupIdNotFound;
            if (!group.IsEmpty || group.State != GroupState.Empty) return ErrorCode.NonEmptyGroup;
            group.State = GroupState.Dead;
        }
        await _store.DeleteGroupAsync(groupId, cancellationToken);
        lock (_groups) if (_groups.GetValueOrDefault(groupId) == group) _groups.Remove(groupId);
        _logger.LogInformation("group {Group}: deleted", groupId);
        return ErrorCode.None;
    }

    /// <summary>Drops committed offsets of a deleted topic from every group.</summary>
    public async Task OnTopicDeletedAsync(string topic, CancellationToken cancellationToken = default)
    {
        await _store.DeleteTopicOffsetsAsync(topic, cancellationToken);
        ConsumerGroup[] groups;
        lock (_groups) groups = _groups.Values.ToArray();
        foreach (var g in groups)
            lock (g)
                foreach (var key in g.Offsets.Keys.Where(k => k.Topic == topic).ToList()) { g.Offsets.Remove(key); g.OffsetSequence.Remove(key); }
    }

    // ------------------------------------------------------------------ Lag

    /// <summary>Committed offset, log end offset and lag for every partition the group has committed.</summary>
    public IReadOnlyList<PartitionLag> GetLag(string groupId)
    {
        var lags = new List<PartitionLag>();
        foreach (var c in FetchOffsets(groupId, null))
        {
            var log = _logs.GetPartition(c.Topic, c.Partition);
            if (log is null) continue;
            long end = log.HighWatermark;
            long start = log.LogStartOffset;
            long lag = Math.Max(0, end - Math.Max(c.Offset, start));
            DateTimeOffset? pendingTimestamp = lag > 0 ? RecordTimestamp(log, Math.Max(c.Offset, start)) : null;
            lags.Add(new PartitionLag(c.Topic, c.Partition, c.Offset, start, end, lag, c.Metadata, c.CommitTime, pendingTimestamp));
        }
        return lags;
    }

    private static DateTimeOffset? RecordTimestamp(PartitionLog log, long offset)
    {
        var read = log.Read(offset, 1);
        if (read.Error != ErrorCode.None || read.Records.Length == 0) return null;
        var bytes = new byte[read.Records.Length];
        read.Records.CopyTo(bytes);
        var iterator = new Protocol.Records.RecordBatchIterator(bytes);
        while (iterator.MoveNext())
        {
            if (iterator.Current.Header.LastOffset < offset) continue;
            foreach (var r in Protocol.Records.RecordBatch.ReadRecords(iterator.Current.Bytes, verifyCrc: false))
                if (r.Offset >= offset) return DateTimeOffset.FromUnixTimeMilliseconds(r.Timestamp);
        }
        return null;
    }

    // ------------------------------------------------------------------ Retention and persistence

    /// <summary>
    /// Expires committed offsets like Kafka: for an empty group, offsets.retention after it became empty
    /// (groups that never had members: after the commit itself). A group left with no offsets and no members is removed.
    /// </summary>
    public async Task<int> ExpireOffsetsAsync(CancellationToken cancellationToken = default)
    {
        ConsumerGroup[] groups;
        lock (_groups) groups = _groups.Values.ToArray();
        var now = Now;
        int expired = 0;
        foreach (var group in groups)
        {
            List<(string, int)> expiring;
            lock (group)
            {
                if (group.State != GroupState.Empty) continue;
                expiring = group.Offsets.Values
                    .Where(c => (group.EmptySince ?? c.CommitTime) + _options.OffsetsRetention <= now && (group.EmptySince is not null || c.CommitTime + _options.OffsetsRetention <= now))
                    .Select(c => (c.Topic, c.Partition)).ToList();
            }
            if (expiring.Count > 0)
            {
                await _store.DeleteOffsetsAsync(group.GroupId, expiring, cancellationToken);
                lock (group) foreach (var k in expiring) { group.Offsets.Remove(k); group.OffsetSequence.Remove(k); }
                expired += expiring.Count;
                _logger.LogInformation("group {Group}: expired {Count} committed offset(s)", group.GroupId, expiring.Count);
            }
            bool remove;
            lock (group)
            {
                remove = group.State == GroupState.Empty && group.Offsets.Count == 0 && group.PendingMembers.Count == 0;
                if (remove) group.State = GroupState.Dead;
            }
            if (remove)
            {
                await _store.DeleteGroupAsync(group.GroupId, cancellationToken);
                lock (_groups) if (_groups.GetValueOrDefault(group.GroupId) == group) _groups.Remove(group.GroupId);
            }
        }
        return expired;
    }

    private async Task ExpireOffsetsSafelyAsync()
    {
        try { await ExpireOffsetsAsync(); }
        catch (Exception e) { _logger.LogError(e, "offset expiration failed"); }
    }

    private async Task PersistSafelyAsync(ConsumerGroup group)
    {
        await group.PersistGate.WaitAsync();
        try
        {
            StoredGroup snapshot;
            lock (group)
            {
                if (group.State == GroupState.Dead) return;
                snapshot = group.ToStored();
            }
            await _store.SaveGroupAsync(snapshot);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "group {Group}: could not persist group metadata", group.GroupId);
        }
        finally
        {
            group.PersistGate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _retentionTimer.Dispose();
        ConsumerGroup[] groups;
        lock (_groups) groups = _groups.Values.ToArray();
        foreach (var g in groups)
        {
            lock (g)
            {
                g.RebalanceTimer?.Dispose();
                foreach (var m in g.Members.Values)
                {
                    m.SessionTimer?.Dispose();
                    m.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.CoordinatorNotAvailable, MemberId: m.MemberId));
                    m.AwaitingSync?.TrySetResult(new SyncGroupResult(ErrorCode.CoordinatorNotAvailable));
                }
                foreach (var t in g.PendingMembers.Values) t.Dispose();
            }
        }
        await _store.DisposeAsync();
    }
}
