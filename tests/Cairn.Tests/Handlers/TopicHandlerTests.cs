using Cairn.Broker.Handlers;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Handlers;

/// <summary>Produce, Fetch, ListOffsets, Metadata and CreateTopics handlers over real logs, called without a socket.</summary>
public sealed class TopicHandlerTests : HandlerTestBase
{
    private static ProduceRequest ProduceOf(string topic, int partition, byte[] batch, short acks = -1) => new()
    {
        Acks = acks, TimeoutMs = 5000,
        TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = new MemoryRecords(batch) }] }],
    };

    private async Task<ProduceResponse.TopicProduceResponse.PartitionProduceResponse> ProduceAsync(string topic, int partition, int count, short acks = -1)
    {
        var response = await HandlerFixture.CallAsync(new ProduceHandler(F.Topics), ProduceOf(topic, partition, Batches.Build(count), acks), 9);
        return Assert.Single(Assert.Single(response!.Responses).PartitionResponses);
    }

    private static FetchRequest FetchOf(string topic, int partition, long offset) => new()
    {
        MaxWaitMs = 0, MinBytes = 0, MaxBytes = 50 << 20, SessionEpoch = -1,
        Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
    };

    [Fact]
    public async Task Produce_appends_at_the_next_offset()
    {
        var first = await ProduceAsync("orders", 1, 3);
        var second = await ProduceAsync("orders", 1, 2);

        Assert.Equal((short)ErrorCode.None, first.ErrorCode);
        Assert.Equal(0, first.BaseOffset);
        Assert.Equal(3, second.BaseOffset);
        Assert.Equal(5, F.Logs.GetPartition("orders", 1)!.HighWatermark);
        Assert.Equal(0, F.Logs.GetPartition("orders", 0)!.HighWatermark);
    }

    [Fact]
    public async Task Produce_to_a_missing_partition_or_an_illegal_name_fails_per_partition()
    {
        var missing = await ProduceAsync("orders", 9, 1);
        var illegal = await ProduceAsync("no/such topic", 0, 1);

        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, missing.ErrorCode);
        Assert.Equal(-1, missing.BaseOffset);
        Assert.Equal((short)ErrorCode.InvalidTopic, illegal.ErrorCode);
        Assert.False(F.Logs.TryGetTopic("no/such topic", out _));
    }

    [Fact]
    public async Task Produce_with_invalid_acks_is_refused_and_acks_0_answers_nothing()
    {
        var invalid = await ProduceAsync("orders", 0, 1, acks: 2);
        var silent = await HandlerFixture.CallAsync(new ProduceHandler(F.Topics), ProduceOf("orders", 0, Batches.Build(1), acks: 0), 9);

        Assert.Equal((short)ErrorCode.InvalidRequiredAcks, invalid.ErrorCode);
        Assert.Null(silent);
        Assert.Equal(1, F.Logs.GetPartition("orders", 0)!.HighWatermark); // the acks=0 batch was still written
    }

    [Fact]
    public async Task Produce_auto_creates_a_topic_with_the_default_partition_count()
    {
        var result = await ProduceAsync("fresh", 0, 1);

        Assert.Equal((short)ErrorCode.None, result.ErrorCode);
        Assert.True(F.Logs.TryGetTopic("fresh", out var topic));
        Assert.Equal(HandlerFixture.DefaultPartitions, topic.PartitionCount);
    }

    [Fact]
    public async Task Fetch_returns_the_stored_records_and_the_high_water_mark()
    {
        await ProduceAsync("orders", 0, 4);

        var response = await HandlerFixture.CallAsync(new FetchHandler(F.Topics, new FetchSessionCache()), FetchOf("orders", 0, 1), 12);

        var data = Assert.Single(Assert.Single(response!.Responses).Partitions);
        Assert.Equal((short)ErrorCode.None, data.ErrorCode);
        Assert.Equal(4, data.HighWatermark);
        var records = Batches.ReadAll(data.Records);
        Assert.Contains(records, r => r.Offset == 1);
        Assert.Equal(["v0", "v1", "v2", "v3"], records.Select(r => System.Text.Encoding.UTF8.GetString(r.Value!.Value.Span)).ToArray());
    }

    [Fact]
    public async Task Fetch_of_an_unknown_topic_or_out_of_range_offset_fails_that_partition()
    {
        await ProduceAsync("orders", 0, 2);
        var handler = new FetchHandler(F.Topics, new FetchSessionCache());

        var unknown = await HandlerFixture.CallAsync(handler, FetchOf("missing", 0, 0), 12);
        var outOfRange = await HandlerFixture.CallAsync(handler, FetchOf("orders", 0, 100), 12);

        var u = Assert.Single(Assert.Single(unknown!.Responses).Partitions);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, u.ErrorCode);
        Assert.Equal(-1, u.HighWatermark);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, Assert.Single(Assert.Single(outOfRange!.Responses).Partitions).ErrorCode);
        Assert.False(F.Logs.TryGetTopic("missing", out _)); // fetch never creates topics
    }

    [Fact]
    public async Task Fetch_with_an_unknown_session_answers_FETCH_SESSION_ID_NOT_FOUND()
    {
        var request = FetchOf("orders", 0, 0);
        request.SessionId = 12345;
        request.SessionEpoch = 1;

        var response = await HandlerFixture.CallAsync(new FetchHandler(F.Topics, new FetchSessionCache()), request, 12);

        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, response!.ErrorCode);
        Assert.Empty(response.Responses);
    }

    private async Task<ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse> ListOffsetAsync(string topic, int partition, long timestamp)
    {
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Timestamp = timestamp }] }],
        };
        var response = await HandlerFixture.CallAsync(new ListOffsetsHandler(F.Topics), request, 7);
        return Assert.Single(Assert.Single(response!.Topics).Partitions);
    }

    [Fact]
    public async Task ListOffsets_answers_earliest_and_latest()
    {
        await ProduceAsync("orders", 1, 5);

        var latest = await ListOffsetAsync("orders", 1, -1);
        var earliest = await ListOffsetAsync("orders", 1, -2);

        Assert.Equal((short)ErrorCode.None, latest.ErrorCode);
        Assert.Equal(5, latest.Offset);
        Assert.Equal(0, earliest.Offset);
    }

    [Fact]
    public async Task ListOffsets_of_an_unknown_topic_or_an_undefined_special_timestamp_fails()
    {
        var unknown = await ListOffsetAsync("missing", 0, -1);
        var undefined = await ListOffsetAsync("orders", 0, -9);

        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknown.ErrorCode);
        Assert.Equal(-1, unknown.Offset);
        Assert.Equal((short)ErrorCode.InvalidRequest, undefined.ErrorCode);
    }

    [Fact]
    public async Task Metadata_describes_this_node_and_every_topic()
    {
        var response = await HandlerFixture.CallAsync(new MetadataHandler(F.Cluster, F.Topics), new MetadataRequest { Topics = null }, 12);

        var broker = Assert.Single(response!.Brokers);
        Assert.Equal((7, "broker.example", 19092), (broker.NodeId, broker.Host, broker.Port));
        Assert.Equal("handler-tests-cluster", response.ClusterId);
        Assert.Equal(7, response.ControllerId);
        var topic = Assert.Single(response.Topics);
        Assert.Equal("orders", topic.Name);
        Assert.Equal([0, 1], topic.Partitions.Select(p => p.PartitionIndex).ToArray());
        Assert.All(topic.Partitions, p => Assert.Equal(7, p.LeaderId));
    }

    [Fact]
    public async Task Metadata_of_unknown_and_illegal_names_fails_without_creating_them()
    {
        var request = new MetadataRequest
        {
            AllowAutoTopicCreation = false,
            Topics = [new() { Name = "missing" }, new() { Name = "bad name" }],
        };

        var response = await HandlerFixture.CallAsync(new MetadataHandler(F.Cluster, F.Topics), request, 12);

        Assert.Equal([(short)ErrorCode.UnknownTopicOrPartition, (short)ErrorCode.InvalidTopic], response!.Topics.Select(t => t.ErrorCode).ToArray());
        Assert.False(F.Logs.TryGetTopic("missing", out _));
    }

    [Fact]
    public async Task Metadata_auto_creates_when_the_client_allows_it()
    {
        var request = new MetadataRequest { AllowAutoTopicCreation = true, Topics = [new() { Name = "wanted" }] };

        var response = await HandlerFixture.CallAsync(new MetadataHandler(F.Cluster, F.Topics), request, 12);

        var topic = Assert.Single(response!.Topics);
        Assert.Equal((short)ErrorCode.None, topic.ErrorCode);
        Assert.Equal(HandlerFixture.DefaultPartitions, topic.Partitions.Count);
        Assert.True(F.Logs.TryGetTopic("wanted", out _));
    }

    private static CreateTopicsRequest.CreatableTopic Creatable(string name, int partitions) =>
        new() { Name = name, NumPartitions = partitions, ReplicationFactor = -1 };

    [Fact]
    public async Task CreateTopics_creates_with_the_asked_partition_count()
    {
        var request = new CreateTopicsRequest { Topics = [Creatable("payments", 3), Creatable("defaulted", -1)] };

        var response = await HandlerFixture.CallAsync(new CreateTopicsHandler(F.Cluster, F.Topics), request, 7);

        Assert.All(response!.Topics, t => Assert.Equal((short)ErrorCode.None, t.ErrorCode));
        Assert.True(F.Logs.TryGetTopic("payments", out var payments));
        Assert.Equal(3, payments.PartitionCount);
        Assert.Equal(payments.Id, response.Topics[0].TopicId);
        Assert.Equal(HandlerFixture.DefaultPartitions, response.Topics[1].NumPartitions);
    }

    [Fact]
    public async Task CreateTopics_refuses_illegal_names_duplicates_existing_topics_and_other_brokers()
    {
        var onOtherBroker = Creatable("elsewhere", -1);
        onOtherBroker.ReplicationFactor = -1;
        onOtherBroker.Assignments = [new() { PartitionIndex = 0, BrokerIds = [99] }];
        var request = new CreateTopicsRequest { Topics = [Creatable("bad name", 1), Creatable("orders", 1), Creatable("twice", 1), Creatable("twice", 1), onOtherBroker] };

        var response = await HandlerFixture.CallAsync(new CreateTopicsHandler(F.Cluster, F.Topics), request, 7);

        Assert.Equal(
            [(short)ErrorCode.InvalidTopic, (short)ErrorCode.TopicAlreadyExists, (short)ErrorCode.None, (short)ErrorCode.InvalidRequest, (short)ErrorCode.InvalidReplicaAssignment],
            response!.Topics.Select(t => t.ErrorCode).ToArray());
        Assert.False(F.Logs.TryGetTopic("elsewhere", out _));
    }

    [Fact]
    public async Task CreateTopics_validate_only_creates_nothing()
    {
        var request = new CreateTopicsRequest { ValidateOnly = true, Topics = [Creatable("dry", 4)] };

        var response = await HandlerFixture.CallAsync(new CreateTopicsHandler(F.Cluster, F.Topics), request, 7);

        Assert.Equal((short)ErrorCode.None, Assert.Single(response!.Topics).ErrorCode);
        Assert.False(F.Logs.TryGetTopic("dry", out _));
    }
}
