using Cairn.Protocol;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups;

/// <summary>
/// The membership requests of the classic group protocol: JoinGroup (with KIP-394 member ids and KIP-345 static
/// members), SyncGroup, Heartbeat and LeaveGroup, checked against the group's state and turned into transitions of
/// <see cref="RebalanceStateMachine"/>. Group metadata is saved to the store after each change that a restart must see.
/// </summary>
internal sealed class GroupMembership
{
    private readonly GroupRegistry _groups;
    private readonly IGroupStore _store;
    private readonly GroupCoordinatorOptions _options;
    private readonly ILogger _logger;
    private readonly RebalanceStateMachine _rebalance;

    public GroupMembership(GroupRegistry groups, IGroupStore store, GroupCoordinatorOptions options, TimeProvider time, ILogger logger)
    {
        _groups = groups;
        _store = store;
        _options = options;
        _logger = logger;
        _rebalance = new RebalanceStateMachine(options, time, logger, PersistSafelyAsync);
    }

    /// <summary>Brings back a stored group. Its members get a fresh session timeout to come back.</summary>
    public void Restore(StoredGroup stored)
    {
        var group = _groups.GetOrCreate(stored.GroupId);
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
                _rebalance.ScheduleSessionExpiry(group, member);
            }
            group.State = group.Members.Count > 0 ? GroupState.Stable : GroupState.Empty;
        }
    }

    // ------------------------------------------------------------------ JoinGroup

    public Task<JoinGroupResult> JoinGroupAsync(JoinGroupRequestData request)
    {
        if (string.IsNullOrEmpty(request.GroupId)) return Task.FromResult(new JoinGroupResult(ErrorCode.InvalidGroupId, MemberId: request.MemberId));
        if (request.SessionTimeoutMs < _options.MinSessionTimeout.TotalMilliseconds || request.SessionTimeoutMs > _options.MaxSessionTimeout.TotalMilliseconds)
            return Task.FromResult(new JoinGroupResult(ErrorCode.InvalidSessionTimeout, MemberId: request.MemberId));

        var group = request.MemberId == "" ? _groups.GetOrCreate(request.GroupId) : _groups.Find(request.GroupId);
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
                _rebalance.ScheduleSessionExpiry(group, existing);
                persist = true;
                return Task.FromResult(RebalanceStateMachine.JoinResponseFor(group, existing, skipAssignment: true));
            }
            existing.Protocols = request.Protocols;
            var waiting = RebalanceStateMachine.AwaitJoin(existing);
            _rebalance.PrepareRebalance(group, $"static member {instanceId} rejoined with new metadata");
            _rebalance.TryCompleteJoin(group);
            return waiting;
        }

        if (group.Members.Count >= _options.MaxGroupSize)
            return Task.FromResult(new JoinGroupResult(ErrorCode.GroupMaxSizeReached, MemberId: ""));

        if (request.RequireKnownMemberId && request.GroupInstanceId is null)
        {
            // JoinGroup v4+: hand out a member id first; the member joins again with it (KIP-394).
            _rebalance.AddPending(group, newMemberId, TimeSpan.FromMilliseconds(request.SessionTimeoutMs));
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
                var waiting = RebalanceStateMachine.AwaitJoin(member);
                _rebalance.TryCompleteJoin(group);
                return waiting;
            case GroupState.CompletingRebalance when member.SameProtocols(request.Protocols):
                // The member missed its JoinGroup response: send it again.
                return Task.FromResult(RebalanceStateMachine.JoinResponseFor(group, member));
            case GroupState.Stable when member.SameProtocols(request.Protocols) && group.LeaderId != member.MemberId:
                return Task.FromResult(RebalanceStateMachine.JoinResponseFor(group, member));
            default:
                // Changed metadata, or the leader rejoining from Stable: a new generation is needed.
                Refresh(member, request);
                member.Protocols = request.Protocols;
                var rejoin = RebalanceStateMachine.AwaitJoin(member);
                _rebalance.PrepareRebalance(group, $"member {member.MemberId} rejoined");
                _rebalance.TryCompleteJoin(group); // it may have been the last member to come back
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
        var waiting = RebalanceStateMachine.AwaitJoin(member);
        if (group.State == GroupState.PreparingRebalance && group.InitialJoinDelay) _rebalance.ExtendInitialDelay(group);
        else _rebalance.PrepareRebalance(group, $"member {memberId} joined");
        _rebalance.TryCompleteJoin(group);
        return waiting;
    }

    private static void Refresh(GroupMember member, JoinGroupRequestData request)
    {
        member.ClientId = request.ClientId;
        member.ClientHost = request.ClientHost;
        member.SessionTimeoutMs = request.SessionTimeoutMs;
        member.RebalanceTimeoutMs = request.RebalanceTimeoutMs;
    }

    // ------------------------------------------------------------------ SyncGroup

    public async Task<SyncGroupResult> SyncGroupAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments)
    {
        var group = _groups.Find(groupId);
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
                    _rebalance.ScheduleSessionExpiry(group, member);
                    return new SyncGroupResult(ErrorCode.None, group.ProtocolType, group.ProtocolName, member.Assignment);
                case GroupState.CompletingRebalance:
                    member.AwaitingSync = new TaskCompletionSource<SyncGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                    result = member.AwaitingSync.Task;
                    _rebalance.ScheduleSessionExpiry(group, member);
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
        var group = _groups.Find(groupId);
        if (group is null) return ErrorCode.UnknownMemberId;
        lock (group)
        {
            var error = CheckMember(group, memberId, groupInstanceId);
            if (error != ErrorCode.None) return error;
            var member = group.Members[memberId];
            switch (group.State)
            {
                case GroupState.PreparingRebalance:
                    _rebalance.ScheduleSessionExpiry(group, member);
                    return ErrorCode.RebalanceInProgress;
                case GroupState.CompletingRebalance or GroupState.Stable:
                    if (generation != group.Generation) return ErrorCode.IllegalGeneration;
                    _rebalance.ScheduleSessionExpiry(group, member);
                    return ErrorCode.None;
                default:
                    return ErrorCode.UnknownMemberId;
            }
        }
    }

    public async Task<(ErrorCode Error, IReadOnlyList<(string MemberId, string? GroupInstanceId, ErrorCode Error)> Members)> LeaveGroupAsync(
        string groupId, IReadOnlyList<(string MemberId, string? GroupInstanceId)> leaving)
    {
        var group = _groups.Find(groupId);
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
                RebalanceStateMachine.RemoveMember(group, member);
                results.Add((memberId, instanceId, ErrorCode.None));
                removedAny = true;
            }
            if (removedAny) persist = _rebalance.AfterMembershipChange(group, "members left");
        }
        if (persist) await PersistSafelyAsync(group);
        return (ErrorCode.None, results);
    }

    // ------------------------------------------------------------------ Reading and deleting groups

    public IReadOnlyList<GroupOverview> ListGroups()
    {
        var list = new List<GroupOverview>();
        foreach (var g in _groups.Snapshot())
            lock (g)
                if (g.State != GroupState.Dead) list.Add(new GroupOverview(g.GroupId, g.ProtocolType ?? "", g.State));
        return list.OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
    }

    public GroupDescription DescribeGroup(string groupId)
    {
        var group = _groups.Find(groupId);
        if (group is null) return new GroupDescription(groupId, GroupState.Dead, "", "", []);
        lock (group) return group.Describe();
    }

    /// <summary>DeleteGroups: only groups without members; the store drops their offsets too.</summary>
    public async Task<ErrorCode> DeleteGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var group = _groups.Find(groupId);
        if (group is null) return ErrorCode.GroupIdNotFound;
        lock (group)
        {
            if (group.State == GroupState.Dead) return ErrorCode.GroupIdNotFound;
            if (!group.IsEmpty || group.State != GroupState.Empty) return ErrorCode.NonEmptyGroup;
            group.State = GroupState.Dead;
        }
        await _store.DeleteGroupAsync(groupId, cancellationToken);
        _groups.Remove(group);
        _logger.LogInformation("group {Group}: deleted", groupId);
        return ErrorCode.None;
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

    /// <summary>Stops every group's timers and answers parked requests: the coordinator is going away.</summary>
    public void Shutdown()
    {
        foreach (var g in _groups.Snapshot())
            lock (g) RebalanceStateMachine.Shutdown(g);
    }
}
