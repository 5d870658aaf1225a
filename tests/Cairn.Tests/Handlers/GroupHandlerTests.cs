using Cairn.Broker.Groups;
using Cairn.Broker.Handlers;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;

namespace Cairn.Tests.Handlers;

/// <summary>Group and offset handlers over a real coordinator (in-memory store, manual clock), called without a socket.</summary>
public sealed class GroupHandlerTests : HandlerTestBase
{
    private static OffsetCommitRequest CommitOf(string group, int generation, string memberId, params (int Partition, long Offset)[] offsets) => new()
    {
        GroupId = group, GenerationIdOrMemberEpoch = generation, MemberId = memberId,
        Topics = [new() { Name = "orders", Partitions = offsets.Select(o => new OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
        {
            PartitionIndex = o.Partition, CommittedOffset = o.Offset, CommittedLeaderEpoch = -1, CommittedMetadata = "m",
        }).ToList() }],
    };

    [Fact]
    public async Task A_standalone_commit_is_fetched_back()
    {
        var committed = await HandlerFixture.CallAsync(new OffsetCommitHandler(F.Groups), CommitOf("g", -1, "", (0, 42), (1, 7)), 8);
        var fetch = new OffsetFetchRequest { GroupId = "g", Topics = [new() { Name = "orders", PartitionIndexes = [0, 1] }] };
        var fetched = await HandlerFixture.CallAsync(new OffsetFetchHandler(F.Groups), fetch, 7);

        Assert.All(Assert.Single(committed!.Topics).Partitions, p => Assert.Equal((short)ErrorCode.None, p.ErrorCode));
        var partitions = Assert.Single(fetched!.Topics).Partitions;
        Assert.Equal([(0, 42L, "m"), (1, 7L, "m")], partitions.Select(p => (p.PartitionIndex, p.CommittedOffset, p.Metadata)).ToArray());
    }

    [Fact]
    public async Task OffsetFetch_v8_answers_per_group_and_minus_one_for_nothing_committed()
    {
        await HandlerFixture.CallAsync(new OffsetCommitHandler(F.Groups), CommitOf("g", -1, "", (0, 5)), 8);
        var fetch = new OffsetFetchRequest
        {
            Groups = [new() { GroupId = "g", Topics = [new() { Name = "orders", PartitionIndexes = [0, 1] }] }, new() { GroupId = "nobody", Topics = null }],
        };

        var fetched = await HandlerFixture.CallAsync(new OffsetFetchHandler(F.Groups), fetch, 8);

        Assert.Equal(["g", "nobody"], fetched!.Groups.Select(g => g.GroupId).ToArray());
        var partitions = Assert.Single(fetched.Groups[0].Topics).Partitions;
        Assert.Equal([(0, 5L), (1, -1L)], partitions.Select(p => (p.PartitionIndex, p.CommittedOffset)).ToArray());
        Assert.All(partitions, p => Assert.Equal((short)ErrorCode.None, p.ErrorCode));
        Assert.Empty(fetched.Groups[1].Topics);
    }

    [Fact]
    public async Task A_commit_from_an_unknown_member_or_to_an_unknown_partition_fails()
    {
        await HandlerFixture.CallAsync(new OffsetCommitHandler(F.Groups), CommitOf("g", -1, "", (0, 1)), 8);

        var ghost = await HandlerFixture.CallAsync(new OffsetCommitHandler(F.Groups), CommitOf("g", 1, "ghost", (0, 9)), 8);
        var noPartition = await HandlerFixture.CallAsync(new OffsetCommitHandler(F.Groups), CommitOf("g", -1, "", (5, 9)), 8);

        Assert.Equal((short)ErrorCode.UnknownMemberId, Assert.Single(Assert.Single(ghost!.Topics).Partitions).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, Assert.Single(Assert.Single(noPartition!.Topics).Partitions).ErrorCode);
        Assert.Equal(1, Assert.Single(F.Coordinator.FetchOffsets("g", null)).Offset);
    }

    /// <summary>Records what the handler asks of the offset store and answers each partition with a chosen error.</summary>
    private sealed class RecordingOffsets(ErrorCode answer) : ICommittedOffsets
    {
        public List<(string Group, int Generation, string Member, IReadOnlyList<OffsetCommitEntry> Entries)> Commits { get; } = [];

        public Task<IReadOnlyList<PartitionError>> CommitOffsetsAsync(string groupId, int generation, string memberId, string? groupInstanceId,
            IReadOnlyList<OffsetCommitEntry> entries, CancellationToken cancellationToken)
        {
            Commits.Add((groupId, generation, memberId, entries));
            return Task.FromResult<IReadOnlyList<PartitionError>>(entries.Select(e => new PartitionError(e.Topic, e.Partition, answer)).ToList());
        }

        public IReadOnlyList<CommittedOffset> FetchOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions) =>
            throw new InvalidOperationException("not used by OffsetCommit");

        public Task<(ErrorCode Error, IReadOnlyList<PartitionError> Partitions)> DeleteOffsetsAsync(string groupId,
            IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("not used by OffsetCommit");

        public Task OnTopicDeletedAsync(string topic, CancellationToken cancellationToken) => throw new InvalidOperationException("not used by OffsetCommit");
    }

    [Fact]
    public async Task OffsetCommit_v0_commits_standalone_and_answers_the_store_errors_in_request_order()
    {
        var store = new RecordingOffsets(ErrorCode.OffsetMetadataTooLarge);

        var response = await HandlerFixture.CallAsync(new OffsetCommitHandler(store), CommitOf("g", 12, "", (1, 10), (0, 20)), 0);

        var (group, generation, _, entries) = Assert.Single(store.Commits);
        Assert.Equal(("g", -1), (group, generation)); // v0 carries no generation
        Assert.Equal([(1, 10L), (0, 20L)], entries.Select(e => (e.Partition, e.Offset)).ToArray());
        Assert.Equal([1, 0], Assert.Single(response!.Topics).Partitions.Select(p => p.PartitionIndex).ToArray());
        Assert.All(response.Topics[0].Partitions, p => Assert.Equal((short)ErrorCode.OffsetMetadataTooLarge, p.ErrorCode));
    }

    private static JoinGroupRequest JoinOf(string group, string memberId) => new()
    {
        GroupId = group, MemberId = memberId, ProtocolType = "consumer", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 30_000,
        Protocols = [new() { Name = "range", Metadata = ConsumerProtocol.Write(new ConsumerProtocolSubscription { Topics = ["orders"] }) }],
    };

    [Fact]
    public async Task A_member_joins_syncs_and_heartbeats()
    {
        var join = new JoinGroupHandler(F.Groups);
        var first = await HandlerFixture.CallAsync(join, JoinOf("g", ""), 5);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first!.ErrorCode);
        Assert.NotEmpty(first.MemberId);

        // The first rebalance of an empty group waits for more members; the manual clock ends the wait.
        var joining = HandlerFixture.CallAsync(join, JoinOf("g", first.MemberId), 5);
        Assert.False(joining.IsCompleted);
        F.Clock.Advance(HandlerFixture.InitialRebalanceDelay);
        var joined = await joining.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal((short)ErrorCode.None, joined!.ErrorCode);
        Assert.Equal(first.MemberId, joined.Leader);
        Assert.Equal("range", joined.ProtocolName);
        var member = Assert.Single(joined.Members);
        Assert.Equal(first.MemberId, member.MemberId);

        byte[] assignment = [1, 2, 3];
        var sync = new SyncGroupRequest
        {
            GroupId = "g", GenerationId = joined.GenerationId, MemberId = first.MemberId, ProtocolType = "consumer", ProtocolName = "range",
            Assignments = [new() { MemberId = first.MemberId, Assignment = assignment }],
        };
        var synced = await HandlerFixture.CallAsync(new SyncGroupHandler(F.Groups), sync, 5);
        Assert.Equal((short)ErrorCode.None, synced!.ErrorCode);
        Assert.Equal(assignment, synced.Assignment);

        var beat = await HandlerFixture.CallAsync(new HeartbeatHandler(F.Groups),
            new HeartbeatRequest { GroupId = "g", GenerationId = joined.GenerationId, MemberId = first.MemberId }, 4);
        Assert.Equal((short)ErrorCode.None, beat!.ErrorCode);
        Assert.Equal("handler-tests", Assert.Single(F.Coordinator.DescribeGroup("g").Members).ClientId);
    }

    [Fact]
    public async Task Sync_and_heartbeat_of_an_unknown_member_answer_UNKNOWN_MEMBER_ID()
    {
        await HandlerFixture.CallAsync(new OffsetCommitHandler(F.Groups), CommitOf("g", -1, "", (0, 1)), 8); // the group exists, empty

        var beat = await HandlerFixture.CallAsync(new HeartbeatHandler(F.Groups),
            new HeartbeatRequest { GroupId = "g", GenerationId = 0, MemberId = "ghost" }, 4);
        var sync = await HandlerFixture.CallAsync(new SyncGroupHandler(F.Groups),
            new SyncGroupRequest { GroupId = "g", GenerationId = 0, MemberId = "ghost", ProtocolType = "consumer", ProtocolName = "range" }, 5);

        Assert.Equal((short)ErrorCode.UnknownMemberId, beat!.ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, sync!.ErrorCode);
        Assert.Empty(sync.Assignment);
    }

    [Fact]
    public async Task ApiVersions_lists_every_handler_with_its_versions_and_itself()
    {
        IApiHandler[] others = [new HeartbeatHandler(F.Groups), new MetadataHandler(F.Cluster, F.Topics)];
        var handler = new ApiVersionsHandler(others);

        var response = await HandlerFixture.CallAsync(handler, new ApiVersionsRequest(), 3);

        Assert.Equal((short)ErrorCode.None, response!.ErrorCode);
        Assert.Equal(
            [((short)ApiKey.Metadata, (short)0, (short)12), ((short)ApiKey.Heartbeat, (short)0, (short)4), ((short)ApiKey.ApiVersions, (short)0, (short)4)],
            response.ApiKeys.Select(k => (k.ApiKey, k.MinVersion, k.MaxVersion)).ToArray());
    }

    [Fact]
    public void ApiVersions_for_an_unsupported_version_carries_UNSUPPORTED_VERSION_and_the_same_list()
    {
        IApiHandler[] others = [new HeartbeatHandler(F.Groups)];
        var registry = new HandlerRegistry([new ApiVersionsHandler(others), .. others]);

        var response = ApiVersionsHandler.UnsupportedVersionResponse(registry);

        Assert.Equal((short)ErrorCode.UnsupportedVersion, response.ErrorCode);
        Assert.Equal([(short)ApiKey.Heartbeat, (short)ApiKey.ApiVersions], response.ApiKeys.Select(k => k.ApiKey).ToArray());
    }
}
