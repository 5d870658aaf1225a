using Cairn.Protocol;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups;

/// <summary>
/// The classic protocol's group transitions and the timers that drive them: Empty or Stable → PreparingRebalance
/// (with group.initial.rebalance.delay for a first generation) → CompletingRebalance once every member has rejoined
/// or the rebalance timeout drops the rest, and members removed when their session times out. Every method expects
/// the caller to hold the group's lock; the timer callbacks take it themselves.
/// </summary>
/// <param name="persist">
/// Saves the group's metadata; never throws. Transitions that need it and are not driven by a request (timers,
/// a join completed by someone else's request) start it without waiting.
/// </param>
internal sealed class RebalanceStateMachine(GroupCoordinatorOptions options, TimeProvider time, ILogger logger, Func<ConsumerGroup, Task> persist)
{
    private DateTimeOffset Now => time.GetUtcNow();

    /// <summary>Parks a member's JoinGroup until the join phase completes.</summary>
    public static Task<JoinGroupResult> AwaitJoin(GroupMember member)
    {
        var previous = member.AwaitingJoin;
        member.AwaitingJoin = new TaskCompletionSource<JoinGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A duplicate join from the same member replaces the older one; the older request gets an error.
        previous?.TrySetResult(new JoinGroupResult(ErrorCode.RebalanceInProgress, MemberId: member.MemberId));
        return member.AwaitingJoin.Task;
    }

    public void PrepareRebalance(ConsumerGroup group, string reason)
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
        group.InitialJoinDelay = initial && options.InitialRebalanceDelay > TimeSpan.Zero;
        var delay = group.InitialJoinDelay ? Min(options.InitialRebalanceDelay, RebalanceTimeout(group)) : RebalanceTimeout(group);
        group.RebalanceTimer?.Dispose();
        group.RebalanceTimer = time.CreateTimer(_ => OnRebalanceTimeout(group), null, delay, Timeout.InfiniteTimeSpan);
        logger.LogInformation("group {Group}: preparing rebalance for generation {Next} ({Reason})", group.GroupId, group.Generation + 1, reason);
    }

    public void ExtendInitialDelay(ConsumerGroup group)
    {
        // Each new member during the initial delay restarts it, up to the rebalance timeout (Kafka's InitialDelayedJoin).
        var elapsed = Now - group.RebalanceStarted;
        var remaining = RebalanceTimeout(group) - elapsed;
        var delay = Min(options.InitialRebalanceDelay, remaining);
        group.RebalanceTimer?.Change(delay > TimeSpan.Zero ? delay : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    // A negative rebalance_timeout_ms (nothing in the protocol forbids one) means "do not wait", as in Kafka's DelayedJoin;
    // a negative dueTime other than -1 ms would make Timer throw.
    private static TimeSpan RebalanceTimeout(ConsumerGroup group) =>
        TimeSpan.FromMilliseconds(group.Members.Count == 0 ? 0 : Math.Max(0, group.Members.Values.Max(m => m.RebalanceTimeoutMs)));

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private void OnRebalanceTimeout(ConsumerGroup group)
    {
        bool save;
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
                logger.LogInformation("group {Group}: member {Member} did not rejoin within the rebalance timeout", group.GroupId, m.MemberId);
                RemoveMember(group, m);
            }
            foreach (var (_, timer) in group.PendingMembers) timer.Dispose();
            group.PendingMembers.Clear();
            save = CompleteJoin(group);
        }
        if (save) _ = persist(group);
    }

    public void TryCompleteJoin(ConsumerGroup group)
    {
        if (group.State == GroupState.PreparingRebalance && !group.InitialJoinDelay && group.AllMembersJoined)
        {
            if (CompleteJoin(group)) _ = persist(group);
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
            BecomeEmpty(group);
            logger.LogInformation("group {Group}: generation {Generation} is empty", group.GroupId, group.Generation);
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
        logger.LogInformation("group {Group}: generation {Generation} with {Members} member(s), protocol {Protocol}, leader {Leader}",
            group.GroupId, group.Generation, group.Members.Count, group.ProtocolName, group.LeaderId);
        return false;
    }

    /// <summary>The new generation has no members: nothing is chosen, and its committed offsets start aging now.</summary>
    private void BecomeEmpty(ConsumerGroup group)
    {
        group.State = GroupState.Empty;
        group.ProtocolName = null;
        group.LeaderId = null;
        group.EmptySince = Now;
    }

    /// <summary>The current generation as <paramref name="member"/> learns it; only the leader gets the members' metadata.</summary>
    public static JoinGroupResult JoinResponseFor(ConsumerGroup group, GroupMember member, bool skipAssignment = false)
    {
        bool isLeader = group.LeaderId == member.MemberId;
        return new JoinGroupResult(ErrorCode.None, group.Generation, group.ProtocolType, group.ProtocolName, group.LeaderId!, member.MemberId,
            isLeader ? CurrentMembers(group) : [], skipAssignment && isLeader);
    }

    private static List<JoinedMember> CurrentMembers(ConsumerGroup group) =>
        group.Members.Values.Select(m => new JoinedMember(m.MemberId, m.GroupInstanceId, m.MetadataFor(group.ProtocolName!) ?? [])).ToList();

    /// <summary>Holds a member id handed out with MEMBER_ID_REQUIRED for one session timeout; the join may complete without it.</summary>
    public void AddPending(ConsumerGroup group, string memberId, TimeSpan sessionTimeout) =>
        group.PendingMembers[memberId] = time.CreateTimer(_ => ExpirePending(group, memberId), null, sessionTimeout, Timeout.InfiniteTimeSpan);

    private void ExpirePending(ConsumerGroup group, string memberId)
    {
        lock (group)
        {
            if (!group.PendingMembers.Remove(memberId, out var timer)) return;
            timer.Dispose();
            TryCompleteJoin(group);
        }
    }

    public static void RemoveMember(ConsumerGroup group, GroupMember member)
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
    public bool AfterMembershipChange(ConsumerGroup group, string reason)
    {
        switch (group.State)
        {
            case GroupState.Stable or GroupState.CompletingRebalance:
                if (group.Members.Count == 0)
                {
                    group.Generation++;
                    BecomeEmpty(group);
                    logger.LogInformation("group {Group}: now empty (generation {Generation})", group.GroupId, group.Generation);
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

    /// <summary>(Re)starts the member's session: it is removed unless it shows up again within its session timeout.</summary>
    public void ScheduleSessionExpiry(ConsumerGroup group, GroupMember member)
    {
        var timeout = TimeSpan.FromMilliseconds(member.SessionTimeoutMs);
        if (member.SessionTimer is null) member.SessionTimer = time.CreateTimer(_ => OnSessionTimeout(group, member), null, timeout, Timeout.InfiniteTimeSpan);
        else member.SessionTimer.Change(timeout, Timeout.InfiniteTimeSpan);
    }

    private void OnSessionTimeout(ConsumerGroup group, GroupMember member)
    {
        bool save;
        lock (group)
        {
            if (!group.Members.TryGetValue(member.MemberId, out var current) || !ReferenceEquals(current, member)) return;
            // A member parked in JoinGroup is alive; the rebalance timeout governs it instead.
            if (member.AwaitingJoin is not null && !member.IsNew)
            {
                ScheduleSessionExpiry(group, member);
                return;
            }
            logger.LogInformation("group {Group}: member {Member} session timed out", group.GroupId, member.MemberId);
            RemoveMember(group, member);
            save = AfterMembershipChange(group, $"member {member.MemberId} session timed out");
        }
        if (save) _ = persist(group);
    }

    /// <summary>Stops the group's timers and answers every parked request with COORDINATOR_NOT_AVAILABLE (the coordinator is going away).</summary>
    public static void Shutdown(ConsumerGroup group)
    {
        group.RebalanceTimer?.Dispose();
        foreach (var m in group.Members.Values)
        {
            m.SessionTimer?.Dispose();
            m.AwaitingJoin?.TrySetResult(new JoinGroupResult(ErrorCode.CoordinatorNotAvailable, MemberId: m.MemberId));
            m.AwaitingSync?.TrySetResult(new SyncGroupResult(ErrorCode.CoordinatorNotAvailable));
        }
        foreach (var t in group.PendingMembers.Values) t.Dispose();
    }
}
