using Cairn.Broker.Admin;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Groups;

/// <summary>The classic group state machine on a manual clock: joins, syncs, timeouts, static members, offsets, retention.</summary>
public sealed class GroupCoordinatorTests : IAsyncLifetime
{
    private static readonly TimeSpan InitialDelay = TimeSpan.FromSeconds(3);
    private const int Session = 10_000, Rebalance = 30_000;

    private readonly ManualTimeProvider _clock = new();
    private readonly InMemoryGroupDatabase _database = new();
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "cairn-groups-" + Guid.NewGuid().ToString("N"));
    private LogManager _logs = null!;
    private GroupCoordinator _coordinator = null!;

    public async Task InitializeAsync()
    {
        _logs = LogManager.Open(new StorageOptions { DataDirectory = _dataDir, RunBackgroundTasks = false });
        _logs.CreateTopic("orders", 3);
        _logs.CreateTopic("audit", 1);
        _coordinator = await StartCoordinatorAsync();
    }

    // The periodic expiry is pushed out of the way so tests can call ExpireOffsetsAsync themselves; one test covers the timer.
    private Task<GroupCoordinator> StartCoordinatorAsync(TimeSpan? retentionCheck = null) =>
        GroupCoordinator.StartAsync(new InMemoryGroupStore("cluster", _database), _logs,
            new GroupCoordinatorOptions
            {
                InitialRebalanceDelay = InitialDelay, OffsetsRetention = TimeSpan.FromDays(7),
                OffsetsRetentionCheckInterval = retentionCheck ?? TimeSpan.FromDays(3650),
            }, _clock, NullLogger.Instance);

    public async Task DisposeAsync()
    {
        await _coordinator.DisposeAsync();
        await _logs.DisposeAsync();
        Directory.Delete(_dataDir, recursive: true);
    }

    private static byte[] Subscription(params string[] topics) => ConsumerProtocol.Write(new ConsumerProtocolSubscription { Topics = topics.ToList() });

    private static JoinGroupRequestData Join(string group, string memberId = "", string? instance = null, string[]? topics = null, bool v4 = true) =>
        new(group, memberId, instance, "consumer", [new MemberProtocol("range", Subscription(topics ?? ["orders"]))], Session, Rebalance, "client", "/127.0.0.1", v4);

    /// <summary>A member joins the v4+ way: MEMBER_ID_REQUIRED first, then a join with the handed-out id.</summary>
    private async Task<Task<JoinGroupResult>> StartJoinAsync(string group, string? instance = null)
    {
        if (instance is not null) return _coordinator.JoinGroupAsync(Join(group, instance: instance));
        var first = await _coordinator.JoinGroupAsync(Join(group));
        Assert.Equal(ErrorCode.MemberIdRequired, first.Error);
        Assert.NotEmpty(first.MemberId);
        return _coordinator.JoinGroupAsync(Join(group, first.MemberId));
    }

    private async Task<(JoinGroupResult Leader, JoinGroupResult Follower)> FormGroupOfTwoAsync(string group)
    {
        var a = await StartJoinAsync(group);
        var b = await StartJoinAsync(group);
        Assert.False(a.IsCompleted);
        _clock.Advance(InitialDelay);
        var (ra, rb) = (await a, await b);
        var leader = ra.Members!.Count > 0 ? ra : rb;
        var follower = ReferenceEquals(leader, ra) ? rb : ra;
        var followerSync = _coordinator.SyncGroupAsync(group, follower.GenerationId, follower.MemberId, null, "consumer", "range", []);
        Assert.False(followerSync.IsCompleted);
        var leaderSync = await _coordinator.SyncGroupAsync(group, leader.GenerationId, leader.MemberId, null, "consumer", "range",
            [(leader.MemberId, new byte[] { 1 }), (follower.MemberId, new byte[] { 2 })]);
        Assert.Equal(new byte[] { 1 }, leaderSync.Assignment);
        Assert.Equal(new byte[] { 2 }, (await followerSync).Assignment);
        return (leader, follower);
    }

    [Fact]
    public async Task First_join_waits_for_the_initial_delay_then_forms_generation_one_with_a_leader()
    {
        var pending = await StartJoinAsync("g1");
        Assert.False(pending.IsCompleted);
        _clock.Advance(InitialDelay - TimeSpan.FromMilliseconds(1));
        Assert.False(pending.IsCompleted);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        var joined = await pending;
        Assert.Equal(ErrorCode.None, joined.Error);
        Assert.Equal(1, joined.GenerationId);
        Assert.Equal("range", joined.ProtocolName);
        Assert.Equal(joined.MemberId, joined.LeaderId);
        Assert.Single(joined.Members!);
        Assert.Equal(GroupState.CompletingRebalance, _coordinator.DescribeGroup("g1").State);
        var sync = await _coordinator.SyncGroupAsync("g1", 1, joined.MemberId, null, null, null, [(joined.MemberId, new byte[] { 9 })]);
        Assert.Equal(new byte[] { 9 }, sync.Assignment);
        Assert.Equal(GroupState.Stable, _coordinator.DescribeGroup("g1").State);
    }

    [Fact]
    public async Task The_leader_gets_every_members_metadata_and_followers_get_none()
    {
        var (leader, follower) = await FormGroupOfTwoAsync("g2");
        Assert.Equal(2, leader.Members!.Count);
        Assert.Empty(follower.Members!);
        Assert.Equal(leader.LeaderId, follower.LeaderId);
        Assert.Equal(ErrorCode.None, _coordinator.Heartbeat("g2", 1, follower.MemberId, null));
        Assert.Equal(ErrorCode.IllegalGeneration, _coordinator.Heartbeat("g2", 7, follower.MemberId, null));
        Assert.Equal(ErrorCode.UnknownMemberId, _coordinator.Heartbeat("g2", 1, "stranger", null));
    }

    [Fact]
    public async Task A_leaving_member_triggers_a_rebalance_that_completes_when_the_rest_rejoin()
    {
        var (leader, follower) = await FormGroupOfTwoAsync("g3");
        var (_, left) = await _coordinator.LeaveGroupAsync("g3", [(leader.MemberId, null)]);
        Assert.Equal(ErrorCode.None, left.Single().Error);
        Assert.Equal(ErrorCode.RebalanceInProgress, _coordinator.Heartbeat("g3", 1, follower.MemberId, null));
        var rejoin = await _coordinator.JoinGroupAsync(Join("g3", follower.MemberId));
        Assert.Equal(2, rejoin.GenerationId);
        Assert.Equal(follower.MemberId, rejoin.LeaderId); // the old leader is gone
    }

    [Fact]
    public async Task A_rejoin_that_completes_the_membership_finishes_the_rebalance_at_once()
    {
        // kafka-python's leader rejoins a Stable group after a metadata change; with every member back, no timeout applies.
        var pending = await StartJoinAsync("solo");
        _clock.Advance(InitialDelay);
        var joined = await pending;
        await _coordinator.SyncGroupAsync("solo", 1, joined.MemberId, null, null, null, [(joined.MemberId, new byte[] { 1 })]);
        var rejoin = _coordinator.JoinGroupAsync(Join("solo", joined.MemberId));
        Assert.True(rejoin.IsCompleted, "the only member rejoined, so the rebalance must not wait for the rebalance timeout");
        Assert.Equal(2, (await rejoin).GenerationId);

        var (leader, follower) = await FormGroupOfTwoAsync("pair");
        var leaderBack = _coordinator.JoinGroupAsync(Join("pair", leader.MemberId, topics: ["orders", "audit"]));
        Assert.False(leaderBack.IsCompleted);
        var followerBack = _coordinator.JoinGroupAsync(Join("pair", follower.MemberId));
        Assert.True(leaderBack.IsCompleted && followerBack.IsCompleted);
        Assert.Equal(2, (await followerBack).GenerationId);
    }

    [Fact]
    public async Task A_member_that_stops_heartbeating_is_removed_after_the_session_timeout()
    {
        var (leader, follower) = await FormGroupOfTwoAsync("g4");
        _clock.Advance(TimeSpan.FromMilliseconds(Session - 1));
        Assert.Equal(ErrorCode.None, _coordinator.Heartbeat("g4", 1, leader.MemberId, null)); // only the leader keeps beating
        Assert.Contains(_coordinator.DescribeGroup("g4").Members, m => m.MemberId == follower.MemberId);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.DoesNotContain(_coordinator.DescribeGroup("g4").Members, m => m.MemberId == follower.MemberId);
        Assert.Equal(ErrorCode.RebalanceInProgress, _coordinator.Heartbeat("g4", 1, leader.MemberId, null));
        Assert.Equal(ErrorCode.UnknownMemberId, _coordinator.Heartbeat("g4", 1, follower.MemberId, null));
    }

    [Fact]
    public async Task A_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped()
    {
        var (leader, follower) = await FormGroupOfTwoAsync("g5");
        var leaderRejoin = _coordinator.JoinGroupAsync(Join("g5", leader.MemberId, topics: ["orders", "audit"])); // new subscription
        Assert.False(leaderRejoin.IsCompleted);
        // The follower keeps heartbeating (seeing REBALANCE_IN_PROGRESS) but never rejoins.
        for (int elapsed = 0; elapsed < Rebalance; elapsed += Session / 2)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(Session / 2));
            if (!leaderRejoin.IsCompleted) _coordinator.Heartbeat("g5", 1, follower.MemberId, null);
        }
        var result = await leaderRejoin;
        Assert.Equal(2, result.GenerationId);
        Assert.Single(result.Members!);
    }

    [Fact]
    public async Task A_restarted_static_member_gets_its_assignment_back_without_a_rebalance_and_the_old_id_is_fenced()
    {
        var a = await StartJoinAsync("g6", instance: "instance-a");
        var b = await StartJoinAsync("g6", instance: "instance-b");
        _clock.Advance(InitialDelay);
        var (ra, rb) = (await a, await b);
        var leader = ra.Members!.Count > 0 ? ra : rb;
        var other = ReferenceEquals(leader, ra) ? rb : ra;
        var otherSync = _coordinator.SyncGroupAsync("g6", 1, other.MemberId, other == ra ? "instance-a" : "instance-b", null, null, []);
        await _coordinator.SyncGroupAsync("g6", 1, leader.MemberId, leader == ra ? "instance-a" : "instance-b", null, null,
            [(ra.MemberId, new byte[] { 0xA }), (rb.MemberId, new byte[] { 0xB })]);
        await otherSync;

        var restarted = await _coordinator.JoinGroupAsync(Join("g6", instance: "instance-b"));
        Assert.Equal(ErrorCode.None, restarted.Error);
        Assert.Equal(1, restarted.GenerationId); // same generation: no rebalance
        Assert.NotEqual(rb.MemberId, restarted.MemberId);
        Assert.Equal(GroupState.Stable, _coordinator.DescribeGroup("g6").State);
        var sync = await _coordinator.SyncGroupAsync("g6", 1, restarted.MemberId, "instance-b", null, null, []);
        Assert.Equal(new byte[] { 0xB }, sync.Assignment);
        Assert.Equal(ErrorCode.FencedInstanceId, _coordinator.Heartbeat("g6", 1, rb.MemberId, "instance-b"));
        Assert.Equal(ErrorCode.None, _coordinator.Heartbeat("g6", 1, ra.MemberId, "instance-a"));
    }

    [Fact]
    public async Task Commits_are_checked_against_membership_and_generation()
    {
        var (leader, _) = await FormGroupOfTwoAsync("g7");
        var ok = await _coordinator.CommitOffsetsAsync("g7", 1, leader.MemberId, null, [new OffsetCommitEntry("orders", 0, 42, -1, "m")]);
        Assert.Equal(ErrorCode.None, ok.Single().Error);
        Assert.Equal(ErrorCode.IllegalGeneration, (await _coordinator.CommitOffsetsAsync("g7", 0, leader.MemberId, null, [new OffsetCommitEntry("orders", 0, 1, -1, null)])).Single().Error);
        Assert.Equal(ErrorCode.UnknownMemberId, (await _coordinator.CommitOffsetsAsync("g7", 1, "x", null, [new OffsetCommitEntry("orders", 0, 1, -1, null)])).Single().Error);
        Assert.Equal(ErrorCode.UnknownMemberId, (await _coordinator.CommitOffsetsAsync("g7", -1, "", null, [new OffsetCommitEntry("orders", 0, 1, -1, null)])).Single().Error);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, (await _coordinator.CommitOffsetsAsync("g7", 1, leader.MemberId, null, [new OffsetCommitEntry("orders", 9, 1, -1, null)])).Single().Error);
        var tooLong = new string('x', 5000);
        Assert.Equal(ErrorCode.OffsetMetadataTooLarge, (await _coordinator.CommitOffsetsAsync("g7", 1, leader.MemberId, null, [new OffsetCommitEntry("orders", 1, 1, -1, tooLong)])).Single().Error);

        var committed = _coordinator.FetchOffsets("g7", [("orders", 0), ("orders", 1)]);
        Assert.Equal(42, committed.Single().Offset);
        Assert.Equal("m", committed.Single().Metadata);
        Assert.Empty(_coordinator.FetchOffsets("no-such-group", null));
    }

    [Fact]
    public async Task Commits_during_completing_rebalance_are_refused()
    {
        var pending = await StartJoinAsync("g8");
        _clock.Advance(InitialDelay);
        var joined = await pending;
        var refused = await _coordinator.CommitOffsetsAsync("g8", 1, joined.MemberId, null, [new OffsetCommitEntry("orders", 0, 5, -1, null)]);
        Assert.Equal(ErrorCode.RebalanceInProgress, refused.Single().Error);
    }

    [Fact]
    public async Task Standalone_commits_work_for_groups_without_members_and_expire_after_retention()
    {
        var result = await _coordinator.CommitOffsetsAsync("manual", -1, "", null, [new OffsetCommitEntry("audit", 0, 7, -1, "")]);
        Assert.Equal(ErrorCode.None, result.Single().Error);
        Assert.Equal("", _coordinator.FetchOffsets("manual", null).Single().Metadata); // empty stays empty, not null

        _clock.Advance(TimeSpan.FromDays(6));
        Assert.Equal(0, await _coordinator.ExpireOffsetsAsync());
        Assert.Single(_coordinator.FetchOffsets("manual", null));
        _clock.Advance(TimeSpan.FromDays(1));
        Assert.Equal(1, await _coordinator.ExpireOffsetsAsync());
        Assert.Empty(_coordinator.FetchOffsets("manual", null));
        Assert.DoesNotContain(_coordinator.ListGroups(), g => g.GroupId == "manual");
    }

    [Fact]
    public async Task Offsets_of_a_group_expire_counted_from_when_it_became_empty()
    {
        var pending = await StartJoinAsync("g9");
        _clock.Advance(InitialDelay);
        var joined = await pending;
        await _coordinator.SyncGroupAsync("g9", 1, joined.MemberId, null, null, null, []);
        await _coordinator.CommitOffsetsAsync("g9", 1, joined.MemberId, null, [new OffsetCommitEntry("orders", 0, 3, -1, null)]);
        // Active for an hour after the commit: retention must count from when the group empties, not from the commit.
        for (int beat = 0; beat < 720; beat++)
        {
            _clock.Advance(TimeSpan.FromSeconds(5));
            Assert.Equal(ErrorCode.None, _coordinator.Heartbeat("g9", 1, joined.MemberId, null));
        }
        await _coordinator.LeaveGroupAsync("g9", [(joined.MemberId, null)]);
        Assert.Equal(GroupState.Empty, _coordinator.DescribeGroup("g9").State);
        _clock.Advance(TimeSpan.FromDays(7) - TimeSpan.FromMinutes(1));
        Assert.Equal(0, await _coordinator.ExpireOffsetsAsync());
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await _coordinator.ExpireOffsetsAsync());
    }

    [Fact]
    public async Task The_periodic_check_expires_offsets_by_itself()
    {
        await _coordinator.DisposeAsync();
        _coordinator = await StartCoordinatorAsync(retentionCheck: TimeSpan.FromMinutes(10));
        await _coordinator.CommitOffsetsAsync("forgotten", -1, "", null, [new OffsetCommitEntry("audit", 0, 1, -1, null)]);
        _clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(10));
        // The timer's work runs asynchronously: wait for it (the bound is only there to end a wait for work that never runs).
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); _coordinator.FetchOffsets("forgotten", null).Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(30);)
            await Task.Delay(20);
        Assert.Empty(_coordinator.FetchOffsets("forgotten", null));
    }

    [Fact]
    public async Task Groups_and_offsets_survive_a_coordinator_restart_and_members_carry_on()
    {
        var (leader, follower) = await FormGroupOfTwoAsync("g10");
        await _coordinator.CommitOffsetsAsync("g10", 1, leader.MemberId, null, [new OffsetCommitEntry("orders", 2, 99, 4, "meta")]);
        await _coordinator.DisposeAsync();

        _coordinator = await StartCoordinatorAsync();
        var described = _coordinator.DescribeGroup("g10");
        Assert.Equal(GroupState.Stable, described.State);
        Assert.Equal(2, described.Members.Count);
        Assert.Equal(ErrorCode.None, _coordinator.Heartbeat("g10", 1, follower.MemberId, null));
        var sync = await _coordinator.SyncGroupAsync("g10", 1, follower.MemberId, null, null, null, []);
        Assert.Equal(new byte[] { 2 }, sync.Assignment);
        var offset = _coordinator.FetchOffsets("g10", null).Single();
        Assert.Equal((99L, 4, "meta"), (offset.Offset, offset.LeaderEpoch, offset.Metadata));
    }

    [Fact]
    public async Task Delete_group_only_when_empty_and_offset_delete_spares_subscribed_topics()
    {
        var (leader, follower) = await FormGroupOfTwoAsync("g11");
        await _coordinator.CommitOffsetsAsync("g11", 1, leader.MemberId, null,
            [new OffsetCommitEntry("orders", 0, 1, -1, null), new OffsetCommitEntry("audit", 0, 2, -1, null)]);
        Assert.Equal(ErrorCode.NonEmptyGroup, await _coordinator.DeleteGroupAsync("g11"));
        var (error, partitions) = await _coordinator.DeleteOffsetsAsync("g11", [("orders", 0), ("audit", 0)]);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.GroupSubscribedToTopic, partitions.Single(p => p.Topic == "orders").Error);
        Assert.Equal(ErrorCode.None, partitions.Single(p => p.Topic == "audit").Error);
        Assert.Equal("orders", _coordinator.FetchOffsets("g11", null).Single().Topic);

        await _coordinator.LeaveGroupAsync("g11", [(leader.MemberId, null), (follower.MemberId, null)]);
        Assert.Equal(ErrorCode.None, await _coordinator.DeleteGroupAsync("g11"));
        Assert.Empty(_coordinator.FetchOffsets("g11", null));
        Assert.Equal(ErrorCode.GroupIdNotFound, await _coordinator.DeleteGroupAsync("g11"));
    }

    [Fact]
    public async Task Lag_is_log_end_minus_committed_with_the_timestamp_of_the_first_unconsumed_record()
    {
        var log = _logs.GetPartition("audit", 0)!;
        using (var builder = new Cairn.Protocol.Records.RecordBatchBuilder())
        {
            for (int i = 0; i < 10; i++) builder.Append(1_000_000 + i * 1000, (byte[]?)null, new byte[] { (byte)i });
            log.Append(builder.Build().AsSpan());
        }
        await _coordinator.CommitOffsetsAsync("lagging", -1, "", null, [new OffsetCommitEntry("audit", 0, 4, -1, null)]);
        var lag = GroupLagReader.Read(_coordinator, _logs, "lagging").Single();
        Assert.Equal((4L, 10L, 6L), (lag.CommittedOffset, lag.LogEndOffset, lag.Lag));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_004_000), lag.CommittedRecordTimestamp);
        await _coordinator.CommitOffsetsAsync("lagging", -1, "", null, [new OffsetCommitEntry("audit", 0, 10, -1, null)]);
        Assert.Equal(0, GroupLagReader.Read(_coordinator, _logs, "lagging").Single().Lag);
        Assert.Null(GroupLagReader.Read(_coordinator, _logs, "lagging").Single().CommittedRecordTimestamp);
    }

    [Fact]
    public async Task Joins_with_inconsistent_protocols_or_bad_session_timeouts_are_refused()
    {
        var bad = Join("g12") with { SessionTimeoutMs = 10 };
        Assert.Equal(ErrorCode.InvalidSessionTimeout, (await _coordinator.JoinGroupAsync(bad)).Error);
        var pending = await StartJoinAsync("g12");
        var other = new JoinGroupRequestData("g12", "", null, "consumer", [new MemberProtocol("roundrobin", Subscription("orders"))], Session, Rebalance, "c", "/h", false);
        Assert.Equal(ErrorCode.InconsistentGroupProtocol, (await _coordinator.JoinGroupAsync(other)).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, (await _coordinator.JoinGroupAsync(Join("nonexistent", "someone"))).Error);
        _clock.Advance(InitialDelay);
        await pending;
    }
}
