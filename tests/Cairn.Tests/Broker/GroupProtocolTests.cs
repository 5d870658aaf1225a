using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;

namespace Cairn.Tests.Broker;

/// <summary>Group APIs over loopback with the project's codecs: the edge cases Kafka clients rely on.</summary>
public sealed class GroupProtocolTests : IAsyncLifetime
{
    private BrokerHarness _broker = null!;
    private WireClient _client = null!;

    public async Task InitializeAsync()
    {
        _broker = await BrokerHarness.StartAsync(o => o with
        {
            DefaultPartitions = 2, OffsetStore = Cairn.Broker.OffsetStoreKind.Sqlite,
            Groups = o.Groups with { InitialRebalanceDelay = TimeSpan.Zero },
        });
        _client = await _broker.ConnectAsync();
        await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "events" }], AllowAutoTopicCreation = true }, 9);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _broker.DisposeAsync();
    }

    private static JoinGroupRequest Join(string group, string memberId = "") => new()
    {
        GroupId = group, MemberId = memberId, SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, ProtocolType = "consumer",
        Protocols = [new() { Name = "range", Metadata = ConsumerProtocol.Write(new ConsumerProtocolSubscription { Topics = ["events"] }) }],
    };

    private async Task<JoinGroupResponse> JoinAsMemberAsync(string group)
    {
        var first = await _client.SendAsync<JoinGroupRequest, JoinGroupResponse>(Join(group), 7);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        var joined = await _client.SendAsync<JoinGroupRequest, JoinGroupResponse>(Join(group, first.MemberId), 7);
        Assert.Equal(0, joined.ErrorCode);
        return joined;
    }

    [Fact]
    public async Task A_v4_plus_first_join_gets_member_id_required_then_forms_the_group()
    {
        var joined = await JoinAsMemberAsync("g");
        Assert.Equal(1, joined.GenerationId);
        Assert.Equal("consumer", joined.ProtocolType);
        Assert.Equal("range", joined.ProtocolName);
        Assert.Equal(joined.MemberId, joined.Leader);
        var assignment = ConsumerProtocol.Write(new ConsumerProtocolAssignment { AssignedPartitions = [new() { Topic = "events", Partitions = [0, 1] }] });
        var sync = await _client.SendAsync<SyncGroupRequest, SyncGroupResponse>(new()
        {
            GroupId = "g", GenerationId = 1, MemberId = joined.MemberId, ProtocolType = "consumer", ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = assignment }],
        }, 5);
        Assert.Equal(assignment, sync.Assignment);
        var heartbeat = await _client.SendAsync<HeartbeatRequest, HeartbeatResponse>(new() { GroupId = "g", GenerationId = 1, MemberId = joined.MemberId }, 4);
        Assert.Equal(0, heartbeat.ErrorCode);

        var described = await _client.SendAsync<DescribeGroupsRequest, DescribeGroupsResponse>(new() { Groups = ["g", "nobody"] }, 5);
        Assert.Equal("Stable", described.Groups[0].GroupState);
        Assert.Equal(assignment, described.Groups[0].Members.Single().MemberAssignment);
        Assert.Equal("/127.0.0.1", described.Groups[0].Members.Single().ClientHost);
        Assert.Equal("Dead", described.Groups[1].GroupState);

        var listed = await _client.SendAsync<ListGroupsRequest, ListGroupsResponse>(new() { StatesFilter = ["Stable"] }, 4);
        Assert.Equal("g", listed.Groups.Single().GroupId);

        var refused = await _client.SendAsync<DeleteGroupsRequest, DeleteGroupsResponse>(new() { GroupsNames = ["g", "nobody"] }, 2);
        Assert.Equal((short)ErrorCode.NonEmptyGroup, refused.Results[0].ErrorCode);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, refused.Results[1].ErrorCode);

        var left = await _client.SendAsync<LeaveGroupRequest, LeaveGroupResponse>(new() { GroupId = "g", Members = [new() { MemberId = joined.MemberId }] }, 4);
        Assert.Equal(0, left.Members.Single().ErrorCode);
        var deleted = await _client.SendAsync<DeleteGroupsRequest, DeleteGroupsResponse>(new() { GroupsNames = ["g"] }, 2);
        Assert.Equal(0, deleted.Results[0].ErrorCode);
    }

    [Fact]
    public async Task OffsetFetch_of_an_unknown_group_or_partition_is_minus_one_without_error()
    {
        var response = await _client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(new()
        {
            GroupId = "never-committed", Topics = [new() { Name = "events", PartitionIndexes = [0, 1] }],
        }, 5);
        Assert.Equal(0, response.ErrorCode);
        Assert.All(response.Topics.Single().Partitions, p => Assert.Equal((-1L, (short)0, ""), (p.CommittedOffset, p.ErrorCode, p.Metadata)));
    }

    [Fact]
    public async Task Standalone_commits_round_trip_with_metadata_through_v2_and_the_batched_v8_fetch()
    {
        var commit = await _client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(new()
        {
            GroupId = "manual", GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics = [new() { Name = "events", Partitions = [new() { PartitionIndex = 1, CommittedOffset = 17, CommittedMetadata = "checkpoint-17" }] }],
        }, 2);
        Assert.Equal(0, commit.Topics[0].Partitions[0].ErrorCode);
        await _client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(new()
        {
            GroupId = "other", GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics = [new() { Name = "events", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 3, CommittedLeaderEpoch = 0, CommittedMetadata = null }] }],
        }, 8);

        var fetched = await _client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(new()
        {
            Groups = [new() { GroupId = "manual", Topics = null }, new() { GroupId = "other", Topics = [new() { Name = "events", PartitionIndexes = [0, 1] }] }],
            RequireStable = true,
        }, 8);
        var manual = fetched.Groups[0].Topics.Single().Partitions.Single();
        Assert.Equal((1, 17L, "checkpoint-17"), (manual.PartitionIndex, manual.CommittedOffset, manual.Metadata));
        var other = fetched.Groups[1].Topics.Single().Partitions;
        Assert.Equal(new[] { 3L, -1L }, other.Select(p => p.CommittedOffset));

        var unknownPartition = await _client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(new()
        {
            GroupId = "manual", GenerationIdOrMemberEpoch = -1,
            Topics = [new() { Name = "no-such-topic", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }] }],
        }, 8);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknownPartition.Topics[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task Commits_survive_a_broker_restart()
    {
        await _client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(new()
        {
            GroupId = "durable", GenerationIdOrMemberEpoch = -1,
            Topics = [new() { Name = "events", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 42, CommittedMetadata = "m" }] }],
        }, 7);
        _client.Dispose();
        var dataDir = _broker.DataDir;
        await _broker.Broker.DisposeAsync();
        _broker = await BrokerHarness.StartAsync(o => o with { DefaultPartitions = 2 }, dataDir);
        _client = await _broker.ConnectAsync();
        var fetched = await _client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(new() { GroupId = "durable", Topics = null }, 7);
        var p = fetched.Topics.Single().Partitions.Single();
        Assert.Equal((42L, "m"), (p.CommittedOffset, p.Metadata));
    }

    [Fact]
    public async Task FindCoordinator_names_this_broker_for_single_and_batched_keys()
    {
        var single = await _client.SendAsync<FindCoordinatorRequest, FindCoordinatorResponse>(new() { Key = "g" }, 2);
        Assert.Equal((1, _broker.Port), (single.NodeId, single.Port));
        var batched = await _client.SendAsync<FindCoordinatorRequest, FindCoordinatorResponse>(new() { CoordinatorKeys = ["a", "b"] }, 4);
        Assert.Equal(new[] { "a", "b" }, batched.Coordinators.Select(c => c.Key));
        Assert.All(batched.Coordinators, c => Assert.Equal((0, _broker.Port), ((int)c.ErrorCode, c.Port)));
    }
}
