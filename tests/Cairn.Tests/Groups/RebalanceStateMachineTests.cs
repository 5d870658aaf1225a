using Cairn.Broker.Groups;
using Cairn.Protocol;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Groups;

/// <summary>The group transitions alone: one <see cref="ConsumerGroup"/>, a manual clock and a recorded persist hook; no store, no requests.</summary>
public sealed class RebalanceStateMachineTests
{
    private static readonly TimeSpan InitialDelay = TimeSpan.FromSeconds(3);
    private const int Session = 10_000, Rebalance = 30_000;

    private readonly ManualTimeProvider _clock = new();
    private readonly List<StoredGroup> _persisted = new();
    private readonly RebalanceStateMachine _machine;
    private readonly ConsumerGroup _group = new("g") { ProtocolType = "consumer" };

    public RebalanceStateMachineTests()
    {
        _machine = new RebalanceStateMachine(new GroupCoordinatorOptions { InitialRebalanceDelay = InitialDelay }, _clock, NullLogger.Instance,
            group =>
            {
                lock (group) lock (_persisted) _persisted.Add(group.ToStored());
                return Task.CompletedTask;
            });
    }

    /// <summary>A member joins the way GroupMembership adds one: new, parked in JoinGroup, starting or extending a rebalance.</summary>
    private Task<JoinGroupResult> Join(string memberId, int rebalanceMs = Rebalance, string protocol = "range")
    {
        lock (_group)
        {
            var member = new GroupMember(memberId, null)
            {
                IsNew = true, SessionTimeoutMs = Session, RebalanceTimeoutMs = rebalanceMs, Protocols = [new MemberProtocol(protocol, [1])],
            };
            _group.Members[memberId] = member;
            var waiting = RebalanceStateMachine.AwaitJoin(member);
            if (_group.State == GroupState.PreparingRebalance && _group.InitialJoinDelay) _machine.ExtendInitialDelay(_group);
            else _machine.PrepareRebalance(_group, "test");
            _machine.TryCompleteJoin(_group);
            return waiting;
        }
    }

    private void Rejoin(string memberId)
    {
        lock (_group)
        {
            _ = RebalanceStateMachine.AwaitJoin(_group.Members[memberId]);
            _machine.TryCompleteJoin(_group);
        }
    }

    private GroupState State { get { lock (_group) return _group.State; } }

    /// <summary>Forms generation one of the given members and makes it stable, as a completed SyncGroup would.</summary>
    private async Task FormStableAsync(int rebalanceMs, params string[] members)
    {
        var joins = members.Select(m => Join(m, rebalanceMs)).ToList();
        _clock.Advance(InitialDelay);
        await Task.WhenAll(joins);
        lock (_group) _group.State = GroupState.Stable;
    }

    [Fact]
    public async Task An_empty_group_waits_the_initial_delay_then_completes_the_join_with_the_first_member_as_leader()
    {
        var a = Join("a");
        _clock.Advance(InitialDelay - TimeSpan.FromMilliseconds(1));
        Assert.Equal(GroupState.PreparingRebalance, State);
        var b = Join("b");
        Assert.False(a.IsCompleted);

        _clock.Advance(InitialDelay);
        var (ra, rb) = (await a, await b);
        Assert.Equal(GroupState.CompletingRebalance, State);
        Assert.Equal((1, 1), (ra.GenerationId, rb.GenerationId));
        Assert.Equal(("a", "range"), (ra.LeaderId, ra.ProtocolName));
        Assert.Equal(["a", "b"], ra.Members!.Select(m => m.MemberId));
        Assert.Empty(rb.Members!);
        Assert.Empty(_persisted); // a generation with members is saved once its assignment is, by SyncGroup
    }

    [Fact]
    public async Task Each_member_joining_during_the_initial_delay_restarts_it_up_to_the_rebalance_timeout()
    {
        var first = Join("a", rebalanceMs: 5_000);
        _clock.Advance(TimeSpan.FromSeconds(2));
        _ = Join("b", rebalanceMs: 5_000);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(first.IsCompleted); // restarted at 2 s: due at 5 s, not 3 s
        _clock.Advance(TimeSpan.FromSeconds(1));
        _ = Join("c", rebalanceMs: 5_000);
        _clock.Advance(TimeSpan.FromSeconds(1));
        // Restarted at 4 s, but the rebalance timeout (5 s since the rebalance began) comes first.
        Assert.True(first.IsCompleted);
        Assert.Equal(3, (await first).Members!.Count);
    }

    [Fact]
    public async Task A_rebalance_drops_members_that_do_not_rejoin_in_time_and_completes_at_once_when_the_last_one_does()
    {
        await FormStableAsync(5_000, "a", "b", "c");
        lock (_group) _machine.PrepareRebalance(_group, "test");
        Rejoin("a");
        Rejoin("b");
        Assert.Equal(GroupState.PreparingRebalance, State);
        _clock.Advance(TimeSpan.FromSeconds(5)); // the rebalance timeout, well within the sessions
        Assert.Equal(GroupState.CompletingRebalance, State);
        lock (_group) Assert.Equal((2, 2), (_group.Generation, _group.Members.Count));

        lock (_group) _machine.PrepareRebalance(_group, "test");
        Rejoin("a");
        Assert.Equal(GroupState.PreparingRebalance, State);
        Rejoin("b");
        Assert.Equal(GroupState.CompletingRebalance, State);
        lock (_group) Assert.Equal(3, _group.Generation);
    }

    [Fact]
    public async Task A_member_whose_session_times_out_is_removed_and_the_last_one_leaves_the_group_empty_and_saved()
    {
        await FormStableAsync(Rebalance, "a");
        _clock.Advance(TimeSpan.FromMilliseconds(Session - 1));
        Assert.Equal(GroupState.Stable, State);
        var emptyAt = _clock.GetUtcNow() + TimeSpan.FromMilliseconds(1);

        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(GroupState.Empty, State);
        var saved = Assert.Single(_persisted);
        Assert.Equal((2, (DateTimeOffset?)emptyAt, 0), (saved.Generation, saved.EmptySince, saved.Members.Count));
        Assert.Null(saved.Leader);
    }

    [Fact]
    public async Task A_member_parked_in_join_outlives_its_session_the_rebalance_timeout_governs_it()
    {
        await FormStableAsync(Rebalance, "a", "b");
        lock (_group) _machine.PrepareRebalance(_group, "test");
        Rejoin("a");
        for (int i = 0; i < 5; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(5));
            lock (_group) _machine.ScheduleSessionExpiry(_group, _group.Members["b"]); // b heartbeats but does not rejoin
        }
        lock (_group) Assert.Equal(["a", "b"], _group.Members.Keys); // a's session ran out twice while it waited in JoinGroup
        _clock.Advance(TimeSpan.FromSeconds(5)); // the rebalance timeout
        lock (_group) Assert.Equal(["a"], _group.Members.Keys);
        Assert.Equal(GroupState.CompletingRebalance, State);
    }

    [Fact]
    public async Task A_member_id_handed_out_but_never_used_stops_holding_up_the_join_after_its_session_timeout()
    {
        await FormStableAsync(Rebalance, "a");
        lock (_group)
        {
            _machine.AddPending(_group, "late", TimeSpan.FromMilliseconds(Session));
            _machine.PrepareRebalance(_group, "test");
        }
        Rejoin("a");
        Assert.Equal(GroupState.PreparingRebalance, State);
        _clock.Advance(TimeSpan.FromMilliseconds(Session));
        Assert.Equal(GroupState.CompletingRebalance, State);
        lock (_group) Assert.Empty(_group.PendingMembers);
    }

    [Fact]
    public async Task Losing_every_member_while_preparing_a_rebalance_completes_it_as_an_empty_generation()
    {
        await FormStableAsync(Rebalance, "a");
        lock (_group)
        {
            _machine.PrepareRebalance(_group, "test");
            RebalanceStateMachine.RemoveMember(_group, _group.Members["a"]);
            Assert.True(_machine.AfterMembershipChange(_group, "test"));
            Assert.Equal((GroupState.Empty, 2), (_group.State, _group.Generation));
            Assert.Null(_group.RebalanceTimer);
        }
    }

    [Fact]
    public async Task A_new_rebalance_sends_members_waiting_for_the_old_assignment_back_to_join()
    {
        await FormStableAsync(Rebalance, "a");
        Task<SyncGroupResult> waiting;
        lock (_group)
        {
            var member = _group.Members["a"];
            member.AwaitingSync = new TaskCompletionSource<SyncGroupResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiting = member.AwaitingSync.Task;
            _machine.PrepareRebalance(_group, "test");
        }
        Assert.Equal(ErrorCode.RebalanceInProgress, (await waiting).Error);
    }

    [Fact]
    public async Task Shutdown_answers_parked_requests_and_stops_the_timers()
    {
        var parked = Join("a");
        lock (_group) RebalanceStateMachine.Shutdown(_group);
        Assert.Equal(ErrorCode.CoordinatorNotAvailable, (await parked).Error);
        _clock.Advance(TimeSpan.FromMilliseconds(Rebalance + Session));
        Assert.Equal(GroupState.PreparingRebalance, State);
    }
}

/// <summary>With the system clock, whose timers reject a negative due time (the manual clock of the tests above does not).</summary>
public sealed class RebalanceTimeoutClampTests
{
    [Fact]
    public async Task A_negative_rebalance_timeout_completes_the_join_without_waiting_instead_of_throwing()
    {
        var machine = new RebalanceStateMachine(new GroupCoordinatorOptions { InitialRebalanceDelay = TimeSpan.FromSeconds(3) },
            TimeProvider.System, NullLogger.Instance, _ => Task.CompletedTask);
        var group = new ConsumerGroup("g") { ProtocolType = "consumer" };
        Task<JoinGroupResult> waiting;
        lock (group)
        {
            var member = new GroupMember("a", null)
            {
                IsNew = true, SessionTimeoutMs = 10_000, RebalanceTimeoutMs = -5, Protocols = [new MemberProtocol("range", [1])],
            };
            group.Members["a"] = member;
            waiting = RebalanceStateMachine.AwaitJoin(member);
            machine.PrepareRebalance(group, "test");
            machine.TryCompleteJoin(group);
        }
        // Completes at once rather than after the 3 s initial delay; the bound only keeps a broken build from hanging.
        var result = await waiting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((1, "a"), (result.GenerationId, result.LeaderId));
    }
}
