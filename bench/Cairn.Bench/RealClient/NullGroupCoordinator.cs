using System.Diagnostics;
using Cairn.Protocol;
using Cairn.Protocol.Messages;

namespace Cairn.Bench.RealClient;

/// <summary>
/// The null broker's consumer-group coordinator: Kafka's classic protocol (JoinGroup / SyncGroup / Heartbeat /
/// LeaveGroup) with in-memory offsets. A rebalance collects joins until every member has rejoined and no new member
/// joined for the join window (or the longest rebalance timeout passes, which drops the members that did not
/// rejoin); the first member to join leads and receives the members' metadata; followers' SyncGroup waits for the
/// leader's. Members whose session times out are removed. One lock for all groups: group traffic is tiny.
/// </summary>
internal sealed class NullGroupCoordinator : IDisposable
{
    private enum GroupState { Empty, PreparingRebalance, CompletingRebalance, Stable }

    private sealed class Member(string id, long joinOrder)
    {
        public string Id { get; } = id;
        public long JoinOrder { get; } = joinOrder;
        public string? GroupInstanceId;
        public int SessionTimeoutMs, RebalanceTimeoutMs;
        public List<JoinGroupRequest.JoinGroupRequestProtocol> Protocols = [];
        public TaskCompletionSource<JoinGroupResponse>? Join;
        public TaskCompletionSource<SyncGroupResponse>? Sync;
        public byte[] Assignment = [];
        public long LastSeen;
    }

    private sealed record Committed(long Offset, int LeaderEpoch, string? Metadata);

    private sealed class Group
    {
        public GroupState State = GroupState.Empty;
        public int Generation;
        public string? ProtocolType, ProtocolName, Leader;
        public readonly Dictionary<string, Member> Members = new(StringComparer.Ordinal);
        /// <summary>Member ids handed out with MEMBER_ID_REQUIRED (v4+), with the time they expire unless used.</summary>
        public readonly Dictionary<string, long> PendingMembers = new(StringComparer.Ordinal);
        public long RebalanceStarted, LastNewJoin, JoinCounter;
        public readonly Dictionary<(string Topic, int Partition), Committed> Offsets = new();
    }

    private const int MinSessionTimeoutMs = 6000, MaxSessionTimeoutMs = 1_800_000, MaxMetadataChars = 4096;

    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly long _joinWindowTicks;
    private readonly CancellationToken _stopping;
    private readonly Timer _timer;

    public NullGroupCoordinator(TimeSpan joinWindow, CancellationToken stopping)
    {
        _joinWindowTicks = (long)(joinWindow.TotalSeconds * Stopwatch.Frequency);
        _stopping = stopping;
        _timer = new Timer(_ => Tick(), null, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));
    }

    private static long Now => Stopwatch.GetTimestamp();
    private static long Ticks(int ms) => ms * Stopwatch.Frequency / 1000;

    public ValueTask<JoinGroupResponse> JoinAsync(JoinGroupRequest request, short version, string? clientId)
    {
        lock (_lock)
        {
            static JoinGroupResponse Fail(ErrorCode error, string memberId = "") => new() { ErrorCode = (short)error, MemberId = memberId, ProtocolName = null };
            if (request.GroupId.Length == 0) return new(Fail(ErrorCode.InvalidGroupId));
            if (request.SessionTimeoutMs is < MinSessionTimeoutMs or > MaxSessionTimeoutMs) return new(Fail(ErrorCode.InvalidSessionTimeout));
            if (request.ProtocolType.Length == 0 || request.Protocols.Count == 0) return new(Fail(ErrorCode.InconsistentGroupProtocol));
            var group = GroupFor(request.GroupId);
            var others = group.Members.Values.Where(m => m.Id != request.MemberId).ToList();
            if (others.Count > 0 && (request.ProtocolType != group.ProtocolType ||
                !request.Protocols.Any(p => others.All(m => m.Protocols.Any(q => q.Name == p.Name)))))
                return new(Fail(ErrorCode.InconsistentGroupProtocol, request.MemberId));

            long now = Now;
            string memberId = request.MemberId;
            if (memberId.Length == 0)
            {
                memberId = $"{(string.IsNullOrEmpty(clientId) ? "member" : clientId)}-{Guid.NewGuid()}";
                if (version >= 4)
                {
                    // KIP-394: the client must join again with this id, so an id is never given to a client that never used it.
                    group.PendingMembers[memberId] = now + Ticks(request.SessionTimeoutMs);
                    return new(Fail(ErrorCode.MemberIdRequired, memberId));
                }
            }
            if (!group.Members.TryGetValue(memberId, out var member))
            {
                if (request.MemberId.Length > 0 && !group.PendingMembers.Remove(memberId)) return new(Fail(ErrorCode.UnknownMemberId, memberId));
                member = new Member(memberId, group.JoinCounter++);
                group.Members.Add(memberId, member);
                group.LastNewJoin = now;
                if (group.Members.Count == 1) group.ProtocolType = request.ProtocolType;
            }
            member.GroupInstanceId = request.GroupInstanceId;
            member.SessionTimeoutMs = request.SessionTimeoutMs;
            member.RebalanceTimeoutMs = request.RebalanceTimeoutMs > 0 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs;
            member.Protocols = request.Protocols;
            member.LastSeen = now;
            member.Join?.TrySetResult(Fail(ErrorCode.RebalanceInProgress, memberId));
            member.Join = new TaskCompletionSource<JoinGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            var joined = member.Join.Task;
            if (group.State != GroupState.PreparingRebalance) PrepareRebalance(group, now);
            TryCompleteJoin(group, now);
            return new(joined.WaitAsync(_stopping));
        }
    }

    public ValueTask<SyncGroupResponse> SyncAsync(SyncGroupRequest request)
    {
        lock (_lock)
        {
            SyncGroupResponse Answer(ErrorCode error, Group? group = null, byte[]? assignment = null) => new()
            {
                ErrorCode = (short)error, ProtocolType = group?.ProtocolType, ProtocolName = group?.ProtocolName, Assignment = assignment ?? [],
            };
            if (!_groups.TryGetValue(request.GroupId, out var group) || !group.Members.TryGetValue(request.MemberId, out var member))
                return new(Answer(ErrorCode.UnknownMemberId));
            if (request.GenerationId != group.Generation) return new(Answer(ErrorCode.IllegalGeneration));
            if ((request.ProtocolType is not null && request.ProtocolType != group.ProtocolType) ||
                (request.ProtocolName is not null && request.ProtocolName != group.ProtocolName))
                return new(Answer(ErrorCode.InconsistentGroupProtocol));
            member.LastSeen = Now;
            switch (group.State)
            {
                case GroupState.Stable:
                    return new(Answer(ErrorCode.None, group, member.Assignment));
                case GroupState.CompletingRebalance when member.Id == group.Leader:
                    foreach (var m in group.Members.Values)
                        m.Assignment = request.Assignments.LastOrDefault(a => a.MemberId == m.Id)?.Assignment ?? [];
                    group.State = GroupState.Stable;
                    foreach (var m in group.Members.Values)
                    {
                        m.Sync?.TrySetResult(Answer(ErrorCode.None, group, m.Assignment));
                        m.Sync = null;
                    }
                    return new(Answer(ErrorCode.None, group, member.Assignment));
                case GroupState.CompletingRebalance:
                    member.Sync?.TrySetResult(Answer(ErrorCode.RebalanceInProgress));
                    member.Sync = new TaskCompletionSource<SyncGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
                    return new(member.Sync.Task.WaitAsync(_stopping));
                default:
                    return new(Answer(ErrorCode.RebalanceInProgress));
            }
        }
    }

    public HeartbeatResponse Heartbeat(HeartbeatRequest request)
    {
        lock (_lock)
        {
            ErrorCode error;
            if (!_groups.TryGetValue(request.GroupId, out var group) || !group.Members.TryGetValue(request.MemberId, out var member))
                error = ErrorCode.UnknownMemberId;
            else if (request.GenerationId != group.Generation) error = ErrorCode.IllegalGeneration;
            else
            {
                member.LastSeen = Now;
                error = group.State == GroupState.PreparingRebalance ? ErrorCode.RebalanceInProgress : ErrorCode.None;
            }
            return new HeartbeatResponse { ErrorCode = (short)error };
        }
    }

    public LeaveGroupResponse Leave(LeaveGroupRequest request, short version)
    {
        lock (_lock)
        {
            var response = new LeaveGroupResponse();
            var leaving = version >= 3 ? request.Members : [new LeaveGroupRequest.MemberIdentity { MemberId = request.MemberId }];
            _groups.TryGetValue(request.GroupId, out var group);
            foreach (var identity in leaving)
            {
                bool removed = group is not null && Remove(group, identity.MemberId);
                response.Members.Add(new LeaveGroupResponse.MemberResponse
                {
                    MemberId = identity.MemberId, GroupInstanceId = identity.GroupInstanceId,
                    ErrorCode = (short)(removed ? ErrorCode.None : ErrorCode.UnknownMemberId),
                });
            }
            if (version < 3) response.ErrorCode = response.Members[0].ErrorCode;
            if (group is not null) AfterMembershipChange(group, Now);
            return response;
        }
    }

    public OffsetCommitResponse Commit(OffsetCommitRequest request, Func<string, int, bool> partitionExists)
    {
        lock (_lock)
        {
            ErrorCode groupError = ErrorCode.None;
            Group? group = null;
            if (request.GroupId.Length == 0) groupError = ErrorCode.InvalidGroupId;
            else
            {
                group = GroupFor(request.GroupId);
                // Kafka's order: a commit from outside the group (generation < 0) only while it is empty, then membership and generation.
                if (request.GenerationIdOrMemberEpoch < 0 && group.State == GroupState.Empty) { }
                else if (group.State == GroupState.CompletingRebalance) groupError = ErrorCode.RebalanceInProgress;
                else if (!group.Members.TryGetValue(request.MemberId, out var member)) groupError = ErrorCode.UnknownMemberId;
                else if (request.GenerationIdOrMemberEpoch != group.Generation) groupError = ErrorCode.IllegalGeneration;
                else member.LastSeen = Now;
            }
            var response = new OffsetCommitResponse();
            foreach (var t in request.Topics)
            {
                var topic = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
                response.Topics.Add(topic);
                foreach (var p in t.Partitions)
                {
                    var error = groupError;
                    if (error == ErrorCode.None && !partitionExists(t.Name, p.PartitionIndex)) error = ErrorCode.UnknownTopicOrPartition;
                    else if (error == ErrorCode.None && p.CommittedMetadata?.Length > MaxMetadataChars) error = ErrorCode.OffsetMetadataTooLarge;
                    if (error == ErrorCode.None) group!.Offsets[(t.Name, p.PartitionIndex)] = new Committed(p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata);
                    topic.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error });
                }
            }
            return response;
        }
    }

    /// <summary>OffsetFetch v0-7 (one group). Nothing committed answers offset -1 without an error, as Kafka does.</summary>
    public OffsetFetchResponse FetchOffsets(OffsetFetchRequest request, short version, Func<string, int, bool> partitionExists)
    {
        lock (_lock)
        {
            var response = new OffsetFetchResponse();
            if (request.GroupId.Length == 0)
            {
                response.ErrorCode = (short)ErrorCode.InvalidGroupId;
                return response;
            }
            _groups.TryGetValue(request.GroupId, out var group);
            IEnumerable<(string Name, IEnumerable<int> Partitions)> wanted = request.Topics is not null
                ? request.Topics.Select(t => (t.Name, (IEnumerable<int>)t.PartitionIndexes))
                : (group?.Offsets.Keys.ToList() ?? []).GroupBy(k => k.Topic).Select(g => (g.Key, (IEnumerable<int>)g.Select(k => k.Partition).Order()));
            foreach (var (name, partitions) in wanted)
            {
                var topic = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = name };
                response.Topics.Add(topic);
                foreach (int p in partitions)
                {
                    var entry = new OffsetFetchResponse.OffsetFetchResponseTopic.OffsetFetchResponsePartition { PartitionIndex = p, CommittedOffset = -1 };
                    if (group is not null && group.Offsets.TryGetValue((name, p), out var committed))
                    {
                        entry.CommittedOffset = committed.Offset;
                        entry.CommittedLeaderEpoch = committed.LeaderEpoch;
                        entry.Metadata = committed.Metadata;
                    }
                    else if (version < 2 && !partitionExists(name, p))
                    {
                        entry.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    }
                    topic.Partitions.Add(entry);
                }
            }
            return response;
        }
    }

    private Group GroupFor(string id)
    {
        if (!_groups.TryGetValue(id, out var group)) _groups.Add(id, group = new Group());
        return group;
    }

    /// <summary>Every member must join again: waiting SyncGroups learn so, heartbeats answer REBALANCE_IN_PROGRESS.</summary>
    private static void PrepareRebalance(Group group, long now)
    {
        group.State = GroupState.PreparingRebalance;
        group.RebalanceStarted = now;
        foreach (var m in group.Members.Values)
        {
            m.Sync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress });
            m.Sync = null;
        }
    }

    private static bool Remove(Group group, string memberId)
    {
        if (!group.Members.Remove(memberId, out var member)) return false;
        member.Join?.TrySetResult(new JoinGroupResponse { ErrorCode = (short)ErrorCode.UnknownMemberId, MemberId = memberId, ProtocolName = null });
        member.Sync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.UnknownMemberId });
        if (group.Leader == memberId) group.Leader = null;
        return true;
    }

    private void AfterMembershipChange(Group group, long now)
    {
        if (group.Members.Count == 0)
        {
            if (group.State != GroupState.Empty) group.Generation++;
            group.State = GroupState.Empty;
            group.Leader = group.ProtocolName = group.ProtocolType = null;
            return;
        }
        if (group.State != GroupState.PreparingRebalance) PrepareRebalance(group, now);
        TryCompleteJoin(group, now);
    }

    private void TryCompleteJoin(Group group, long now)
    {
        if (group.State != GroupState.PreparingRebalance) return;
        bool allJoined = group.PendingMembers.Count == 0 && group.Members.Values.All(m => m.Join is not null);
        bool quiet = now - group.LastNewJoin >= _joinWindowTicks;
        int rebalanceTimeoutMs = group.Members.Values.Select(m => m.RebalanceTimeoutMs).DefaultIfEmpty(0).Max();
        bool timedOut = now - group.RebalanceStarted >= Ticks(rebalanceTimeoutMs);
        if (!(allJoined && quiet) && !timedOut) return;
        foreach (var late in group.Members.Values.Where(m => m.Join is null).Select(m => m.Id).ToList()) Remove(group, late);
        group.PendingMembers.Clear();
        if (group.Members.Count == 0)
        {
            AfterMembershipChange(group, now);
            return;
        }
        var members = group.Members.Values.OrderBy(m => m.JoinOrder).ToList();
        group.Generation++;
        group.ProtocolName = ChooseProtocol(members);
        group.Leader ??= members[0].Id;
        group.State = GroupState.CompletingRebalance;
        var memberList = members.Select(m => new JoinGroupResponse.JoinGroupResponseMember
        {
            MemberId = m.Id, GroupInstanceId = m.GroupInstanceId, Metadata = m.Protocols.First(p => p.Name == group.ProtocolName).Metadata,
        }).ToList();
        foreach (var m in members)
        {
            m.LastSeen = now;
            m.Join!.TrySetResult(new JoinGroupResponse
            {
                GenerationId = group.Generation, ProtocolType = group.ProtocolType, ProtocolName = group.ProtocolName,
                Leader = group.Leader, MemberId = m.Id, Members = m.Id == group.Leader ? memberList : [],
            });
            m.Join = null;
        }
    }

    /// <summary>As Kafka: among the protocols every member supports, each member votes for its most preferred one.</summary>
    private static string ChooseProtocol(List<Member> members)
    {
        var candidates = members[0].Protocols.Select(p => p.Name).Where(n => members.All(m => m.Protocols.Any(p => p.Name == n))).ToList();
        return members
            .Select(m => m.Protocols.First(p => candidates.Contains(p.Name)).Name)
            .GroupBy(n => n)
            .OrderByDescending(g => g.Count()).ThenBy(g => candidates.IndexOf(g.Key))
            .First().Key;
    }

    /// <summary>Completes rebalances whose join window or timeout passed and drops members whose session expired.</summary>
    private void Tick()
    {
        lock (_lock)
        {
            long now = Now;
            foreach (var group in _groups.Values)
            {
                foreach (var expired in group.PendingMembers.Where(kv => kv.Value < now).Select(kv => kv.Key).ToList())
                    group.PendingMembers.Remove(expired);
                var dead = group.Members.Values
                    .Where(m => m.Join is null && m.Sync is null && now - m.LastSeen > Ticks(m.SessionTimeoutMs))
                    .Select(m => m.Id).ToList();
                foreach (var id in dead) Remove(group, id);
                if (dead.Count > 0) AfterMembershipChange(group, now);
                else TryCompleteJoin(group, now);
            }
        }
    }

    public void Dispose() => _timer.Dispose();
}
