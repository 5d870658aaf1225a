using Cairn.Client;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Client;

public sealed class AdminClientTests : ClientTestBase
{
    [Fact]
    public async Task Topics_are_created_listed_described_and_deleted()
    {
        var created = await Admin.CreateTopicsAsync(
        [
            new NewTopic("orders", 3, 1) { Configs = new Dictionary<string, string?> { ["retention.ms"] = "3600000", ["cleanup.policy"] = "delete" } },
            new NewTopic("audit"),
        ]);
        Assert.Equal(["orders", "audit"], created.Select(c => c.Name));
        Assert.Equal(3, created[0].NumPartitions);
        Assert.Equal(1, created[1].NumPartitions); // the broker default
        Assert.NotEqual(Guid.Empty, created[0].TopicId);

        var listed = await Admin.ListTopicsAsync();
        Assert.Equal(["audit", "orders"], listed.Select(t => t.Name));
        Assert.Equal(3, listed.Single(t => t.Name == "orders").PartitionCount);

        var producer = Producer();
        for (int i = 0; i < 5; i++) await producer.ProduceAsync(new TopicPartition("orders", 1), Message.FromStrings(null, "v" + i));

        var described = (await Admin.DescribeTopicsAsync(["orders"])).Single();
        Assert.Equal(created[0].TopicId, described.TopicId);
        Assert.Equal([0, 1, 2], described.Partitions.Select(p => p.Partition));
        Assert.All(described.Partitions, p => { Assert.Equal(1, p.Leader); Assert.Equal([1], p.Replicas); Assert.Equal([1], p.Isr); });
        Assert.Equal([0L, 5, 0], described.Partitions.Select(p => p.LogEndOffset!.Value));
        Assert.All(described.Partitions, p => Assert.Equal(0, p.LogStartOffset));
        var sizes = await Admin.DescribePartitionSizesAsync([described]);
        Assert.Equal(3, sizes.Count);
        Assert.Equal(0, sizes[new TopicPartition("orders", 0)]);
        Assert.True(sizes[new TopicPartition("orders", 1)] > 5 * 2); // five stored records, at least their values
        var withoutOffsets = (await Admin.DescribeTopicsAsync(["orders"], includeOffsets: false)).Single();
        Assert.All(withoutOffsets.Partitions, p => Assert.Null(p.LogEndOffset));

        var configs = await Admin.DescribeConfigsAsync(ConfigResource.Topic("orders"));
        var retention = configs.Single(c => c.Name == "retention.ms");
        Assert.Equal("3600000", retention.Value);
        Assert.Equal(ConfigSource.TopicConfig, retention.Source);
        Assert.False(retention.IsDefault);
        var segment = configs.Single(c => c.Name == "segment.bytes");
        Assert.True(segment.IsDefault);

        await Admin.DeleteTopicsAsync(["audit"]);
        Assert.Equal(["orders"], (await Admin.ListTopicsAsync()).Select(t => t.Name));
        var missing = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.DescribeTopicsAsync(["audit", "orders"]));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, missing.Error);
        Assert.Equal(["audit"], missing.Failures.Keys);
    }

    [Fact]
    public async Task Create_topic_errors_name_the_topic()
    {
        await Admin.CreateTopicAsync("dup", 1);
        var e = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.CreateTopicsAsync([new NewTopic("dup", 1), new NewTopic("fresh", 2), new NewTopic("bad/name", 1)]));
        Assert.Equal(ErrorCode.TopicAlreadyExists, e.Failures["dup"].Error);
        Assert.Equal(ErrorCode.InvalidTopic, e.Failures["bad/name"].Error);
        Assert.False(e.Failures.ContainsKey("fresh"));
        Assert.False(e.IsRetriable);
        Assert.Contains("TOPIC_ALREADY_EXISTS", e.Message);
        Assert.Contains("fresh", (await Admin.ListTopicsAsync()).Select(t => t.Name));

        var invalid = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.CreateTopicAsync("rf", 1, replicationFactor: 3));
        Assert.Equal(ErrorCode.InvalidReplicationFactor, invalid.Error);

        var validated = await Admin.CreateTopicsAsync([new NewTopic("only-validated", 4)], validateOnly: true);
        Assert.Equal(4, validated.Single().NumPartitions);
        Assert.DoesNotContain("only-validated", (await Admin.ListTopicsAsync()).Select(t => t.Name));
    }

    [Fact]
    public async Task Topic_configs_are_altered_on_the_broker()
    {
        await Admin.CreateTopicAsync("tuned", 1);
        await Admin.AlterConfigsAsync(ConfigResource.Topic("tuned"), [ConfigAlteration.Set("retention.ms", "120000"), ConfigAlteration.Set("cleanup.policy", "compact")]);
        var configs = (await Admin.DescribeConfigsAsync(ConfigResource.Topic("tuned"))).ToDictionary(c => c.Name);
        Assert.Equal(("120000", "compact"), (configs["retention.ms"].Value, configs["cleanup.policy"].Value));
        await Admin.AlterConfigsAsync(ConfigResource.Topic("tuned"), [ConfigAlteration.Delete("cleanup.policy")]);
        configs = (await Admin.DescribeConfigsAsync(ConfigResource.Topic("tuned"))).ToDictionary(c => c.Name);
        Assert.Equal(("120000", "delete"), (configs["retention.ms"].Value, configs["cleanup.policy"].Value));
        var bad = await Assert.ThrowsAnyAsync<KafkaException>(() => Admin.AlterConfigsAsync(ConfigResource.Topic("tuned"), [ConfigAlteration.Set("retention.ms", "soon")]));
        Assert.Contains("retention.ms", bad.Message);
    }

    [Fact]
    public async Task Partitions_can_be_added()
    {
        await Admin.CreateTopicAsync("growing", 1);
        var producer = Producer();
        await producer.ProduceAsync("growing", Message.FromStrings("k", "v")); // caches 1 partition
        await Admin.CreatePartitionsAsync("growing", 4);
        Assert.Equal(4, (await Admin.DescribeTopicsAsync(["growing"])).Single().Partitions.Count);
        var result = await producer.ProduceAsync(new TopicPartition("growing", 3), Message.FromStrings("k", "v"));
        Assert.Equal(3, result.Partition);
        var shrink = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.CreatePartitionsAsync("growing", 2));
        Assert.Equal(ErrorCode.InvalidPartitions, shrink.Error);
    }

    [Fact]
    public async Task Cluster_and_broker_configs()
    {
        var cluster = await Admin.DescribeClusterAsync();
        Assert.Equal(1, cluster.ControllerId);
        Assert.Equal(Broker.Port, cluster.Brokers.Single().Port);
        Assert.False(string.IsNullOrEmpty(cluster.ClusterId));
        var broker = await Admin.DescribeConfigsAsync(ConfigResource.Broker(1));
        Assert.Equal("1", broker.Single(c => c.Name == "broker.id").Value);
        var unknown = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.DescribeConfigsAsync(ConfigResource.Topic("nope")));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, unknown.Error);
    }

    [Fact]
    public async Task Altering_configs_uses_what_the_broker_offers()
    {
        await Admin.CreateTopicAsync("configurable", 1);
        var connection = await Broker.ConnectAsync();
        var versions = await connection.SendAsync<ApiVersionsRequest, ApiVersionsResponse>(new(), 3);
        bool incremental = versions.ApiKeys.Any(k => k.ApiKey == (short)ApiKey.IncrementalAlterConfigs);
        bool legacy = versions.ApiKeys.Any(k => k.ApiKey == (short)ApiKey.AlterConfigs);
        connection.Dispose();
        var alter = () => Admin.AlterConfigsAsync(ConfigResource.Topic("configurable"), [ConfigAlteration.Set("retention.ms", "120000")]);
        if (!incremental && !legacy)
        {
            // This broker changes no configs: the error says so rather than failing obscurely.
            var e = await Assert.ThrowsAsync<KafkaException>(alter);
            Assert.Equal(ErrorCode.UnsupportedVersion, e.Error);
            Assert.Contains("neither IncrementalAlterConfigs nor AlterConfigs", e.Message);
            return;
        }
        await alter();
        Assert.Equal("120000", (await Admin.DescribeConfigsAsync(ConfigResource.Topic("configurable"))).Single(c => c.Name == "retention.ms").Value);
    }

    [Fact]
    public async Task List_offsets_by_position_and_time_and_delete_records()
    {
        await Admin.CreateTopicAsync("timed", 1);
        var tp = new TopicPartition("timed", 0);
        var t0 = new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var producer = Producer();
        int[] seconds = [0, 10, 20, 50, 30];
        foreach (var s in seconds) await producer.ProduceAsync(tp, Message.FromStrings(null, "at" + s, timestamp: t0.AddSeconds(s)));

        Assert.Equal(0, (await Admin.ListOffsetsAsync([tp], OffsetSpec.Earliest))[tp].Offset);
        Assert.Equal(5, (await Admin.ListOffsetsAsync([tp], OffsetSpec.Latest))[tp].Offset);
        var at = (await Admin.ListOffsetsAsync([tp], OffsetSpec.ForTimestamp(t0.AddSeconds(15))))[tp];
        Assert.Equal(2, at.Offset);
        Assert.Equal(t0.AddSeconds(20), at.Timestamp);
        var max = (await Admin.ListOffsetsAsync([tp], OffsetSpec.MaxTimestamp))[tp];
        Assert.Equal(3, max.Offset);
        Assert.Equal(t0.AddSeconds(50), max.Timestamp);
        Assert.Equal(-1, (await Admin.ListOffsetsAsync([tp], OffsetSpec.ForTimestamp(t0.AddHours(1))))[tp].Offset);
        Assert.Equal(2, (await Admin.ListOffsetsAsync([tp], OffsetSpec.From(Cairn.Offsets.Offset.Timestamp(t0.AddSeconds(11)))))[tp].Offset);

        var low = await Admin.DeleteRecordsAsync(new Dictionary<TopicPartition, long> { [tp] = 3 });
        Assert.Equal(3, low[tp]);
        Assert.Equal(3, (await Admin.ListOffsetsAsync([tp], OffsetSpec.Earliest))[tp].Offset);
        Assert.Equal(3, (await Admin.DescribeTopicsAsync(["timed"])).Single().Partitions[0].LogStartOffset);

        var unknown = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.ListOffsetsAsync([new TopicPartition("timed", 5)], OffsetSpec.Latest));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, unknown.Error);
    }

    [Fact]
    public async Task Group_offsets_commit_fetch_delete_and_group_lifecycle()
    {
        await Admin.CreateTopicAsync("events", 2);
        var p0 = new TopicPartition("events", 0);
        var p1 = new TopicPartition("events", 1);
        Assert.Empty(await Admin.FetchCommittedOffsetsAsync("g1"));
        Assert.Empty(await Admin.FetchCommittedOffsetsAsync("g1", [p0, p1]));

        await Admin.CommitGroupOffsetsAsync("g1", new Dictionary<TopicPartition, OffsetAndMetadata>
        {
            [p0] = new(5, "first", 0),
            [p1] = new(7),
        });
        var all = await Admin.FetchCommittedOffsetsAsync("g1");
        Assert.Equal(new OffsetAndMetadata(5, "first", 0), all[p0]);
        Assert.Equal(7, all[p1].Offset);
        Assert.Equal("", all[p1].Metadata);
        var one = await Admin.FetchCommittedOffsetsAsync("g1", [p1]);
        Assert.Equal([p1], one.Keys);

        await Admin.CommitGroupOffsetsAsync("g1", new Dictionary<TopicPartition, OffsetAndMetadata> { [p0] = new(9, "second") });
        Assert.Equal(9, (await Admin.FetchCommittedOffsetsAsync("g1", [p0]))[p0].Offset);

        var groups = await Admin.ListGroupsAsync();
        var listed = groups.Single(g => g.GroupId == "g1");
        Assert.Equal("Empty", listed.State);
        Assert.Empty(await Admin.ListGroupsAsync(["Stable"]));
        var described = (await Admin.DescribeGroupsAsync(["g1", "never"])).ToDictionary(g => g.GroupId);
        Assert.Equal("Empty", described["g1"].State);
        Assert.Empty(described["g1"].Members);
        Assert.Equal(1, described["g1"].Coordinator);
        Assert.Equal("Dead", described["never"].State);

        await Admin.DeleteGroupOffsetsAsync("g1", [p0]);
        Assert.Equal([p1], (await Admin.FetchCommittedOffsetsAsync("g1")).Keys);

        var unknownPartition = await Assert.ThrowsAsync<KafkaOperationException>(() =>
            Admin.CommitGroupOffsetsAsync("g1", new Dictionary<TopicPartition, OffsetAndMetadata> { [new TopicPartition("events", 9)] = new(1) }));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, unknownPartition.Error);

        await Admin.DeleteGroupsAsync(["g1"]);
        Assert.DoesNotContain(await Admin.ListGroupsAsync(), g => g.GroupId == "g1");
        Assert.Empty(await Admin.FetchCommittedOffsetsAsync("g1"));
        var gone = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.DeleteGroupsAsync(["g1"]));
        Assert.Equal(ErrorCode.GroupIdNotFound, gone.Failures["g1"].Error);
    }

    [Fact]
    public async Task A_group_with_active_members_refuses_outside_commits_and_is_described_with_its_assignment()
    {
        await Admin.CreateTopicAsync("events", 2);
        using var member = await Broker.ConnectAsync();
        var join = new JoinGroupRequest
        {
            GroupId = "live", SessionTimeoutMs = 30_000, RebalanceTimeoutMs = 30_000, ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = ConsumerProtocol.Write(new ConsumerProtocolSubscription { Topics = ["events"] }) }],
        };
        var first = await member.SendAsync<JoinGroupRequest, JoinGroupResponse>(join, 7);
        join.MemberId = first.MemberId;
        var joined = await member.SendAsync<JoinGroupRequest, JoinGroupResponse>(join, 7);
        Assert.Equal(0, joined.ErrorCode);
        var assignment = ConsumerProtocol.Write(new ConsumerProtocolAssignment { AssignedPartitions = [new() { Topic = "events", Partitions = [1, 0] }] });
        var sync = await member.SendAsync<SyncGroupRequest, SyncGroupResponse>(new()
        {
            GroupId = "live", GenerationId = joined.GenerationId, MemberId = joined.MemberId, ProtocolType = "consumer", ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = assignment }],
        }, 5);
        Assert.Equal(0, sync.ErrorCode);

        var refused = await Assert.ThrowsAsync<KafkaException>(() => Admin.CommitGroupOffsetsAsync("live",
            new Dictionary<TopicPartition, OffsetAndMetadata> { [new TopicPartition("events", 0)] = new(3) }));
        Assert.Equal(ErrorCode.UnknownMemberId, refused.Error);
        Assert.Contains("active members", refused.Message);
        Assert.False(refused.IsRetriable);

        var group = (await Admin.DescribeGroupsAsync(["live"])).Single();
        Assert.Equal("Stable", group.State);
        Assert.Equal("consumer", group.ProtocolType);
        Assert.Equal("range", group.Protocol);
        var m = group.Members.Single();
        Assert.Equal(joined.MemberId, m.MemberId);
        Assert.Equal(["events"], m.SubscribedTopics);
        Assert.Equal([new TopicPartition("events", 0), new TopicPartition("events", 1)], m.Assignment);
        Assert.Equal("cairn-tests", m.ClientId);
        Assert.Equal("Stable", (await Admin.ListGroupsAsync()).Single(g => g.GroupId == "live").State);

        var nonEmpty = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.DeleteGroupsAsync(["live"]));
        Assert.Equal(ErrorCode.NonEmptyGroup, nonEmpty.Error);
        var subscribed = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.DeleteGroupOffsetsAsync("live", [new TopicPartition("events", 0)]));
        Assert.Equal(ErrorCode.GroupSubscribedToTopic, subscribed.Error);

        // Once the member leaves, the group is empty and outside commits work again.
        await member.SendAsync<LeaveGroupRequest, LeaveGroupResponse>(new() { GroupId = "live", Members = [new() { MemberId = joined.MemberId }] }, 4);
        await Admin.CommitGroupOffsetsAsync("live", new Dictionary<TopicPartition, OffsetAndMetadata> { [new TopicPartition("events", 0)] = new(3) });
        Assert.Equal(3, (await Admin.FetchCommittedOffsetsAsync("live"))[new TopicPartition("events", 0)].Offset);
    }
}

/// <summary>A broker that does not create topics on demand: unknown topics are errors everywhere.</summary>
public sealed class NoAutoCreateTests : ClientTestBase
{
    protected override Cairn.Broker.BrokerOptions Configure(Cairn.Broker.BrokerOptions options) => base.Configure(options) with { AutoCreateTopics = false };

    [Fact]
    public async Task Unknown_topics_fail_with_unknown_topic_or_partition()
    {
        var producer = Producer();
        var produce = await Assert.ThrowsAsync<KafkaException>(() => producer.ProduceAsync("missing", Message.FromStrings("k", "v")).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, produce.Error);
        Assert.Contains("missing", produce.Message);

        var consumer = Consumer();
        consumer.Assign([new TopicPartition("missing", 0)]);
        var consume = await Assert.ThrowsAsync<KafkaException>(() => consumer.ConsumeAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, consume.Error);
        var seek = await Assert.ThrowsAsync<KafkaException>(() => consumer.SeekAsync(new TopicPartition("missing", 0), Cairn.Offsets.Offset.Earliest));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, seek.Error);

        var describe = await Assert.ThrowsAsync<KafkaOperationException>(() => Admin.DescribeTopicsAsync(["missing"]));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, describe.Failures["missing"].Error);
        Assert.Empty(await Admin.ListTopicsAsync());

        // Other topics are unaffected, and the producer keeps working.
        await Admin.CreateTopicAsync("present", 1);
        Assert.Equal(0, (await producer.ProduceAsync("present", Message.FromStrings("k", "v"))).Offset);
    }
}
