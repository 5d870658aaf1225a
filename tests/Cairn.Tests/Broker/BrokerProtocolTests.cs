using System.Buffers.Binary;
using System.Diagnostics;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Record = Cairn.Protocol.Records.Record;

namespace Cairn.Tests.Broker;

/// <summary>The broker over real loopback sockets, driven with the project's own codecs, for paths real clients rarely hit.</summary>
public sealed class BrokerProtocolTests : IAsyncLifetime
{
    private BrokerHarness _broker = null!;
    private WireClient _client = null!;

    public async Task InitializeAsync()
    {
        _broker = await BrokerHarness.StartAsync(o => o with { DefaultPartitions = 2 });
        _client = await _broker.ConnectAsync();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _broker.DisposeAsync();
    }

    private Task<ProduceResponse> ProduceAsync(string topic, int partition, byte[] batch, short acks = -1, short version = 9) =>
        _client.SendAsync<ProduceRequest, ProduceResponse>(new ProduceRequest
        {
            Acks = acks, TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = new MemoryRecords(batch) }] }],
        }, version);

    private static FetchRequest FetchOf(string topic, int partition, long offset, int maxWaitMs = 0, int minBytes = 0, int partitionMaxBytes = 1 << 20) => new()
    {
        MaxWaitMs = maxWaitMs, MinBytes = minBytes, MaxBytes = 50 << 20, SessionEpoch = -1,
        Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = partitionMaxBytes }] }],
    };

    [Fact]
    public async Task ApiVersions_lists_exactly_the_handlers_and_their_declared_versions()
    {
        var response = await _client.SendAsync<ApiVersionsRequest, ApiVersionsResponse>(new() { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3);
        Assert.Equal(0, response.ErrorCode);
        var produce = response.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.Produce);
        Assert.Equal((0, 11), (produce.MinVersion, produce.MaxVersion));
        var fetch = response.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.Fetch);
        Assert.Equal((4, 17), (fetch.MinVersion, fetch.MaxVersion));
        Assert.DoesNotContain(response.ApiKeys, k => k.ApiKey == (short)ApiKey.LeaderAndIsr);
    }

    [Fact]
    public async Task ApiVersions_of_an_unknown_newer_version_answers_v0_with_unsupported_version_and_the_ranges()
    {
        using var writer = new KafkaWriter();
        writer.Advance(4);
        new RequestHeader(ApiKey.ApiVersions, 99, 77, "future-client").Write(writer);
        writer.WriteUnsignedVarint(0); // whatever a future body holds, it is not parsed
        writer.PatchInt32(0, writer.Position - 4);
        await _client.SendRawAsync(writer.WrittenMemory);
        var frame = await _client.ReadFrameAsync(TimeSpan.FromSeconds(10));
        var reader = new KafkaReader(frame);
        Assert.Equal(77, reader.ReadInt32()); // response header v0: correlation id only
        var body = Cairn.Protocol.Schema.MessageSerializer.Read<ApiVersionsResponse>(reader, 0);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, body.ErrorCode);
        Assert.Contains(body.ApiKeys, k => k.ApiKey == (short)ApiKey.ApiVersions && k.MaxVersion == 4);
    }

    [Fact]
    public async Task Produce_assigns_sequential_offsets_and_fetch_returns_the_batches_verbatim()
    {
        var first = Batches.Build(3, "a");
        var second = Batches.Build(2, "b", codec: CompressionCodec.Zstd);
        var r1 = await ProduceAsync("orders", 0, first.ToArray());
        var r2 = await ProduceAsync("orders", 0, second.ToArray());
        Assert.Equal(0, r1.Responses[0].PartitionResponses[0].BaseOffset);
        Assert.Equal(3, r2.Responses[0].PartitionResponses[0].BaseOffset);

        var fetched = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("orders", 0, 0), 11);
        var data = fetched.Responses[0].Partitions[0];
        Assert.Equal(5, data.HighWatermark);
        Assert.Equal(5, data.LastStableOffset);
        var bytes = new byte[data.Records!.Length];
        data.Records.CopyTo(bytes);
        // Stored verbatim: identical to what was sent except for the base offset the broker wrote in.
        var expectedSecond = second.ToArray();
        RecordBatchHeader.WriteBaseOffset(expectedSecond, 3);
        Assert.Equal(first.Concat(expectedSecond).ToArray(), bytes);
        var records = Batches.ReadAll(data.Records);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4 }, records.Select(r => r.Offset));
        Assert.Equal("b1", System.Text.Encoding.UTF8.GetString(records[4].Value!.Value.Span));
    }

    [Fact]
    public async Task Fetch_from_inside_a_batch_returns_that_whole_batch()
    {
        await ProduceAsync("mid", 0, Batches.Build(5));
        var fetched = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("mid", 0, 3), 11);
        var records = Batches.ReadAll(fetched.Responses[0].Partitions[0].Records);
        Assert.Equal(0, records[0].Offset);
        Assert.Equal(5, records.Count);
    }

    [Fact]
    public async Task Fetch_beyond_the_high_water_mark_is_offset_out_of_range_and_at_it_is_empty()
    {
        await ProduceAsync("range", 0, Batches.Build(2));
        var beyond = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("range", 0, 3), 11);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, beyond.Responses[0].Partitions[0].ErrorCode);
        var at = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("range", 0, 2), 11);
        Assert.Equal(0, at.Responses[0].Partitions[0].ErrorCode);
        Assert.Equal(0, at.Responses[0].Partitions[0].Records!.Length);
    }

    /// <summary>Produces while this test's own connection is busy with a waiting fetch.</summary>
    private async Task ProduceFromAnotherConnectionAsync(string topic, int partition, byte[] batch)
    {
        using var producer = await _broker.ConnectAsync();
        await producer.SendAsync<ProduceRequest, ProduceResponse>(new ProduceRequest
        {
            Acks = 1, TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = new MemoryRecords(batch) }] }],
        }, 9);
    }

    [Fact]
    public async Task A_waiting_fetch_wakes_when_a_record_is_appended()
    {
        await ProduceAsync("wake", 0, Batches.Build(1));
        var watch = Stopwatch.StartNew();
        var pending = _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("wake", 0, 1, maxWaitMs: 60_000, minBytes: 1), 11, TimeSpan.FromSeconds(90));
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        await ProduceFromAnotherConnectionAsync("wake", 0, Batches.Build(1, "late"));
        var response = await pending;
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "the fetch waited for max_wait instead of waking on the append"); // max_wait is 60 s
        Assert.Equal("late0", System.Text.Encoding.UTF8.GetString(Batches.ReadAll(response.Responses[0].Partitions[0].Records)[0].Value!.Value.Span));
    }

    private static FetchRequest FetchOfBoth(string topic, long offset0, long offset1, int maxWaitMs, int minBytes) => new()
    {
        MaxWaitMs = maxWaitMs, MinBytes = minBytes, MaxBytes = 50 << 20, SessionEpoch = -1,
        Topics = [new()
        {
            Topic = topic,
            Partitions = [new() { Partition = 0, FetchOffset = offset0, PartitionMaxBytes = 1 << 20 }, new() { Partition = 1, FetchOffset = offset1, PartitionMaxBytes = 1 << 20 }],
        }],
    };

    [Fact]
    public async Task A_fetch_waiting_on_two_partitions_wakes_when_the_second_one_gets_a_record()
    {
        await ProduceAsync("pair", 0, Batches.Build(2));
        await ProduceAsync("pair", 1, Batches.Build(1));
        var watch = Stopwatch.StartNew();
        var pending = _client.SendAsync<FetchRequest, FetchResponse>(FetchOfBoth("pair", 2, 1, maxWaitMs: 60_000, minBytes: 1), 11, TimeSpan.FromSeconds(90));
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        await ProduceFromAnotherConnectionAsync("pair", 1, Batches.Build(1, "second"));
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "the fetch waited for max_wait instead of waking on the append"); // max_wait is 60 s
        var partitions = response.Responses.Single().Partitions;
        Assert.Equal(0, partitions.Single(p => p.PartitionIndex == 0).Records!.Length);
        var second = partitions.Single(p => p.PartitionIndex == 1);
        Assert.Equal(2, second.HighWatermark);
        Assert.Equal("second0", System.Text.Encoding.UTF8.GetString(Batches.ReadAll(second.Records)[0].Value!.Value.Span));
    }

    [Fact]
    public async Task A_fetch_on_two_quiet_partitions_returns_empty_at_max_wait()
    {
        await ProduceAsync("still", 0, Batches.Build(1));
        var watch = Stopwatch.StartNew();
        var response = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOfBoth("still", 1, 0, maxWaitMs: 400, minBytes: 1), 11)
            .WaitAsync(TimeSpan.FromSeconds(30));
        // The broker's deadline is on Environment.TickCount64, which may step in 16 ms increments.
        Assert.True(watch.ElapsedMilliseconds >= 400 - 16, $"returned after {watch.ElapsedMilliseconds} ms, before max_wait");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"returned after {watch.ElapsedMilliseconds} ms, long after max_wait");
        Assert.All(response.Responses.Single().Partitions, p => Assert.Equal(0, p.Records!.Length));
    }

    [Fact]
    public async Task A_fetch_without_enough_bytes_returns_empty_after_max_wait()
    {
        await ProduceAsync("quiet", 0, Batches.Build(1));
        var watch = Stopwatch.StartNew();
        var response = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("quiet", 0, 1, maxWaitMs: 300, minBytes: 1), 11);
        Assert.True(watch.ElapsedMilliseconds >= 250);
        Assert.Equal(0, response.Responses[0].Partitions[0].Records!.Length);
        Assert.Equal(1, response.Responses[0].Partitions[0].HighWatermark);
    }

    [Fact]
    public async Task Fetch_sessions_send_only_changed_partitions_and_check_epochs()
    {
        await ProduceAsync("sess", 0, Batches.Build(2));
        await ProduceAsync("sess", 1, Batches.Build(1));
        var full = new FetchRequest
        {
            MaxBytes = 1 << 20, SessionId = 0, SessionEpoch = 0,
            Topics = [new() { Topic = "sess", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }, new() { Partition = 1, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var first = await _client.SendAsync<FetchRequest, FetchResponse>(full, 11);
        Assert.NotEqual(0, first.SessionId);
        Assert.Equal(2, first.Responses[0].Partitions.Count);

        // Incremental, epoch 1: partition 0 moved to offset 2, partition 1 to 1. Nothing new: no partitions in the response.
        var incremental = new FetchRequest
        {
            MaxBytes = 1 << 20, SessionId = first.SessionId, SessionEpoch = 1,
            Topics = [new() { Topic = "sess", Partitions = [new() { Partition = 0, FetchOffset = 2, PartitionMaxBytes = 1 << 20 }, new() { Partition = 1, FetchOffset = 1, PartitionMaxBytes = 1 << 20 }] }],
        };
        var second = await _client.SendAsync<FetchRequest, FetchResponse>(incremental, 11);
        Assert.Equal(0, second.ErrorCode);
        Assert.Empty(second.Responses);

        await ProduceAsync("sess", 1, Batches.Build(1, "new"));
        var third = await _client.SendAsync<FetchRequest, FetchResponse>(new FetchRequest { MaxBytes = 1 << 20, SessionId = first.SessionId, SessionEpoch = 2 }, 11);
        var only = Assert.Single(Assert.Single(third.Responses).Partitions);
        Assert.Equal(1, only.PartitionIndex);
        Assert.Equal(1, Batches.ReadAll(only.Records).Single().Offset);

        var stale = await _client.SendAsync<FetchRequest, FetchResponse>(new FetchRequest { SessionId = first.SessionId, SessionEpoch = 2 }, 11);
        Assert.Equal((short)ErrorCode.InvalidFetchSessionEpoch, stale.ErrorCode);
        var unknown = await _client.SendAsync<FetchRequest, FetchResponse>(new FetchRequest { SessionId = 12345, SessionEpoch = 5 }, 11);
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, unknown.ErrorCode);

        // Forgetting partition 1 leaves only partition 0 in the session.
        await ProduceAsync("sess", 0, Batches.Build(1, "p0"));
        await ProduceAsync("sess", 1, Batches.Build(1, "p1"));
        var forget = await _client.SendAsync<FetchRequest, FetchResponse>(new FetchRequest
        {
            MaxBytes = 1 << 20, SessionId = first.SessionId, SessionEpoch = 3,
            ForgottenTopicsData = [new() { Topic = "sess", Partitions = [1] }],
        }, 11);
        Assert.Equal(new[] { 0 }, forget.Responses.SelectMany(t => t.Partitions).Select(p => p.PartitionIndex));
    }

    [Fact]
    public async Task Fetch_v13_addresses_topics_by_id()
    {
        await ProduceAsync("ids", 0, Batches.Build(1));
        var metadata = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "ids" }] }, 12);
        var id = metadata.Topics[0].TopicId;
        Assert.NotEqual(Guid.Empty, id);
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20, SessionEpoch = -1,
            Topics = [new() { TopicId = id, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        };
        var response = await _client.SendAsync<FetchRequest, FetchResponse>(request, 13);
        Assert.Equal(id, response.Responses[0].TopicId);
        Assert.Single(Batches.ReadAll(response.Responses[0].Partitions[0].Records));
        request.Topics[0].TopicId = Guid.NewGuid();
        var unknown = await _client.SendAsync<FetchRequest, FetchResponse>(request, 13);
        Assert.Equal((short)ErrorCode.UnknownTopicId, unknown.Responses[0].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task Fetch_returns_an_oversized_first_batch_whole_but_no_more()
    {
        await ProduceAsync("big", 0, Batches.Build(50, new string('x', 100)));
        await ProduceAsync("big", 0, Batches.Build(50, new string('y', 100)));
        var response = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("big", 0, 0, partitionMaxBytes: 100), 11);
        Assert.Equal(50, Batches.ReadAll(response.Responses[0].Partitions[0].Records).Count);
    }

    [Fact]
    public async Task ListOffsets_answers_earliest_latest_max_timestamp_and_by_timestamp()
    {
        await ProduceAsync("times", 0, Batches.Build(3, firstTimestamp: 1000)); // offsets 0-2 at 1000-1002
        await ProduceAsync("times", 0, Batches.Build(3, firstTimestamp: 2000)); // offsets 3-5 at 2000-2002
        async Task<(long Offset, long Timestamp)> Query(long ts)
        {
            var r = await _client.SendAsync<ListOffsetsRequest, ListOffsetsResponse>(new()
            {
                ReplicaId = -1, Topics = [new() { Name = "times", Partitions = [new() { PartitionIndex = 0, Timestamp = ts }] }],
            }, 7);
            var p = r.Topics[0].Partitions[0];
            Assert.Equal(0, p.ErrorCode);
            return (p.Offset, p.Timestamp);
        }
        Assert.Equal(0, (await Query(-2)).Offset);
        Assert.Equal(6, (await Query(-1)).Offset);
        Assert.Equal((5L, 2002L), await Query(-3));
        Assert.Equal((1L, 1001L), await Query(1001));
        Assert.Equal((3L, 2000L), await Query(1500));
        Assert.Equal((-1L, -1L), await Query(5000));
    }

    [Fact]
    public async Task Produce_errors_match_kafka_and_append_nothing()
    {
        var unknownPartition = await ProduceAsync("errs", 7, Batches.Build(1));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknownPartition.Responses[0].PartitionResponses[0].ErrorCode);

        var invalidName = await ProduceAsync("bad/name", 0, Batches.Build(1));
        Assert.Equal((short)ErrorCode.InvalidTopic, invalidName.Responses[0].PartitionResponses[0].ErrorCode);

        var corrupt = Batches.Build(2);
        corrupt[^1] ^= 0xFF;
        var crc = await ProduceAsync("errs", 0, corrupt);
        Assert.Equal((short)ErrorCode.CorruptMessage, crc.Responses[0].PartitionResponses[0].ErrorCode);

        var magic1 = Batches.Build(1);
        magic1[RecordBatchHeader.MagicOffset] = 1;
        var old = await ProduceAsync("errs", 0, magic1);
        Assert.Equal((short)ErrorCode.UnsupportedForMessageFormat, old.Responses[0].PartitionResponses[0].ErrorCode);

        var create = await _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new()
        {
            Topics = [new() { Name = "small", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "max.message.bytes", Value = "200" }] }],
        }, 5);
        Assert.Equal(0, create.Topics[0].ErrorCode);
        var tooLarge = await ProduceAsync("small", 0, Batches.Build(20, new string('z', 50)));
        Assert.Equal((short)ErrorCode.MessageTooLarge, tooLarge.Responses[0].PartitionResponses[0].ErrorCode);

        var fetched = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("errs", 0, 0), 11);
        Assert.Equal(0, fetched.Responses[0].Partitions[0].HighWatermark);
    }

    [Fact]
    public async Task Idempotent_retries_are_not_appended_twice()
    {
        var init = await _client.SendAsync<InitProducerIdRequest, InitProducerIdResponse>(new() { TransactionalId = null, TransactionTimeoutMs = 60000 }, 4);
        Assert.Equal(0, init.ErrorCode);
        var batch = Batches.Build(3, producerId: init.ProducerId, producerEpoch: init.ProducerEpoch, baseSequence: 0);
        var first = await ProduceAsync("idem", 0, batch.ToArray());
        var retry = await ProduceAsync("idem", 0, batch.ToArray());
        Assert.Equal(0, retry.Responses[0].PartitionResponses[0].ErrorCode);
        Assert.Equal(first.Responses[0].PartitionResponses[0].BaseOffset, retry.Responses[0].PartitionResponses[0].BaseOffset);
        var gap = await ProduceAsync("idem", 0, Batches.Build(1, producerId: init.ProducerId, producerEpoch: init.ProducerEpoch, baseSequence: 10));
        Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, gap.Responses[0].PartitionResponses[0].ErrorCode);
        var fetched = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("idem", 0, 0), 11);
        Assert.Equal(3, fetched.Responses[0].Partitions[0].HighWatermark);

        var next = await _client.SendAsync<InitProducerIdRequest, InitProducerIdResponse>(new() { TransactionalId = null }, 4);
        Assert.NotEqual(init.ProducerId, next.ProducerId);
    }

    [Fact]
    public async Task Acks_zero_gets_no_response_and_the_connection_goes_on()
    {
        await _client.SendOnlyAsync(new ProduceRequest
        {
            Acks = 0, TopicData = [new() { Name = "fire", PartitionData = [new() { Index = 0, Records = new MemoryRecords(Batches.Build(2)) }] }],
        }, 9);
        var metadata = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "fire" }] }, 9);
        Assert.Equal("fire", metadata.Topics[0].Name);
        var fetched = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("fire", 0, 0), 11);
        Assert.Equal(2, fetched.Responses[0].Partitions[0].HighWatermark);
    }

    [Fact]
    public async Task Metadata_auto_creates_with_the_default_partition_count_and_v0_empty_means_all()
    {
        var created = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "auto" }], AllowAutoTopicCreation = true }, 9);
        Assert.Equal(2, created.Topics[0].Partitions.Count);
        Assert.All(created.Topics[0].Partitions, p => Assert.Equal(1, p.LeaderId));
        var notCreated = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "manual" }], AllowAutoTopicCreation = false }, 9);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, notCreated.Topics[0].ErrorCode);
        var all = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [] }, 0);
        Assert.Contains(all.Topics, t => t.Name == "auto");
        var none = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [] }, 1);
        Assert.Empty(none.Topics);
        Assert.Equal(_broker.Port, all.Brokers.Single().Port);
    }

    [Fact]
    public async Task Topic_admin_creates_grows_describes_trims_and_deletes()
    {
        var create = await _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new()
        {
            Topics = [new() { Name = "admin", NumPartitions = 3, ReplicationFactor = -1, Configs = [new() { Name = "retention.ms", Value = "3600000" }] }],
        }, 7);
        Assert.Equal(0, create.Topics[0].ErrorCode);
        Assert.NotEqual(Guid.Empty, create.Topics[0].TopicId);
        var again = await _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new() { Topics = [new() { Name = "admin", NumPartitions = 1, ReplicationFactor = 1 }] }, 7);
        Assert.Equal((short)ErrorCode.TopicAlreadyExists, again.Topics[0].ErrorCode);
        var badConfig = await _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new() { Topics = [new() { Name = "x", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "retention.ms", Value = "soon" }] }] }, 7);
        Assert.Equal((short)ErrorCode.InvalidConfig, badConfig.Topics[0].ErrorCode);
        var rf3 = await _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new() { Topics = [new() { Name = "y", NumPartitions = 1, ReplicationFactor = 3 }] }, 7);
        Assert.Equal((short)ErrorCode.InvalidReplicationFactor, rf3.Topics[0].ErrorCode);

        var grow = await _client.SendAsync<CreatePartitionsRequest, CreatePartitionsResponse>(new() { Topics = [new() { Name = "admin", Count = 5, Assignments = null }] }, 3);
        Assert.Equal(0, grow.Results[0].ErrorCode);
        var shrink = await _client.SendAsync<CreatePartitionsRequest, CreatePartitionsResponse>(new() { Topics = [new() { Name = "admin", Count = 2, Assignments = null }] }, 3);
        Assert.Equal((short)ErrorCode.InvalidPartitions, shrink.Results[0].ErrorCode);

        var describe = await _client.SendAsync<DescribeConfigsRequest, DescribeConfigsResponse>(new()
        {
            Resources = [new() { ResourceType = 2, ResourceName = "admin", ConfigurationKeys = null }],
        }, 4);
        var retention = describe.Results[0].Configs.Single(c => c.Name == "retention.ms");
        Assert.Equal("3600000", retention.Value);
        Assert.Equal(1, retention.ConfigSource); // topic override
        Assert.Equal("delete", describe.Results[0].Configs.Single(c => c.Name == "cleanup.policy").Value);

        await ProduceAsync("admin", 4, Batches.Build(5));
        var trim = await _client.SendAsync<DeleteRecordsRequest, DeleteRecordsResponse>(new()
        {
            Topics = [new() { Name = "admin", Partitions = [new() { PartitionIndex = 4, Offset = 3 }] }],
        }, 2);
        Assert.Equal(3, trim.Topics[0].Partitions[0].LowWatermark);
        var below = await _client.SendAsync<FetchRequest, FetchResponse>(FetchOf("admin", 4, 1), 11);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, below.Responses[0].Partitions[0].ErrorCode);
        Assert.Equal(3, below.Responses[0].Partitions[0].LogStartOffset);

        var delete = await _client.SendAsync<DeleteTopicsRequest, DeleteTopicsResponse>(new() { TopicNames = ["admin", "nope"] }, 5);
        Assert.Equal(0, delete.Responses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, delete.Responses[1].ErrorCode);
        var metadata = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "admin" }], AllowAutoTopicCreation = false }, 9);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, metadata.Topics[0].ErrorCode);
    }

    [Fact]
    public async Task Topic_configs_can_be_altered_incrementally_and_replaced()
    {
        await _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new() { Topics = [new() { Name = "cfg", NumPartitions = 1, ReplicationFactor = 1 }] }, 5);
        var set = await _client.SendAsync<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(new()
        {
            Resources = [new() { ResourceType = 2, ResourceName = "cfg", Configs = [new() { Name = "retention.ms", ConfigOperation = 0, Value = "60000" }, new() { Name = "cleanup.policy", ConfigOperation = 0, Value = "compact" }] }],
        }, 1);
        Assert.Equal(0, set.Responses[0].ErrorCode);
        async Task<Dictionary<string, string?>> Describe() => (await _client.SendAsync<DescribeConfigsRequest, DescribeConfigsResponse>(new()
        {
            Resources = [new() { ResourceType = 2, ResourceName = "cfg", ConfigurationKeys = null }],
        }, 4)).Results[0].Configs.ToDictionary(c => c.Name, c => c.Value);
        Assert.Equal(("60000", "compact"), ((await Describe())["retention.ms"], (await Describe())["cleanup.policy"]));

        var delete = await _client.SendAsync<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(new()
        {
            Resources = [new() { ResourceType = 2, ResourceName = "cfg", Configs = [new() { Name = "cleanup.policy", ConfigOperation = 1, Value = null }] }],
        }, 1);
        Assert.Equal(0, delete.Responses[0].ErrorCode);
        Assert.Equal(("60000", "delete"), ((await Describe())["retention.ms"], (await Describe())["cleanup.policy"]));

        var bad = await _client.SendAsync<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(new()
        {
            Resources = [new() { ResourceType = 2, ResourceName = "cfg", Configs = [new() { Name = "retention.ms", ConfigOperation = 0, Value = "soon" }] },
                         new() { ResourceType = 2, ResourceName = "missing", Configs = [] }],
        }, 1);
        Assert.Equal((short)ErrorCode.InvalidConfig, bad.Responses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, bad.Responses[1].ErrorCode);

        var replaced = await _client.SendAsync<AlterConfigsRequest, AlterConfigsResponse>(new()
        {
            Resources = [new() { ResourceType = 2, ResourceName = "cfg", Configs = [new() { Name = "segment.bytes", Value = "1048576" }] }],
        }, 1);
        Assert.Equal(0, replaced.Responses[0].ErrorCode);
        var after = await Describe();
        Assert.Equal(("1048576", "604800000"), (after["segment.bytes"], after["retention.ms"])); // retention.ms back to its default
    }

    [Fact]
    public async Task DescribeLogDirs_reports_partition_sizes()
    {
        var batch = Batches.Build(10);
        await ProduceAsync("sizes", 1, batch);
        var all = await _client.SendAsync<DescribeLogDirsRequest, DescribeLogDirsResponse>(new() { Topics = null }, 4);
        var dir = Assert.Single(all.Results);
        Assert.True(dir.TotalBytes > 0);
        var sizes = dir.Topics.Single(t => t.Name == "sizes").Partitions.ToDictionary(p => p.PartitionIndex, p => p.PartitionSize);
        Assert.Equal((0L, (long)batch.Length), (sizes[0], sizes[1]));
        var one = await _client.SendAsync<DescribeLogDirsRequest, DescribeLogDirsResponse>(new() { Topics = [new() { Topic = "sizes", Partitions = [1] }] }, 1);
        Assert.Equal(1, one.Results[0].Topics.Single().Partitions.Single().PartitionIndex);
    }

    [Fact]
    public async Task DescribeCluster_names_this_broker_as_the_only_broker_and_controller()
    {
        var response = await _client.SendAsync<DescribeClusterRequest, DescribeClusterResponse>(new(), 1);
        Assert.Equal(0, response.ErrorCode);
        Assert.Equal(1, response.ControllerId);
        Assert.Equal(_broker.Port, Assert.Single(response.Brokers).Port);
        Assert.False(string.IsNullOrEmpty(response.ClusterId));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 3, 1, 2, 3 })]                      // frame shorter than a header
    [InlineData(new byte[] { 0x7f, 0xff, 0xff, 0xff })]                   // over the request size limit
    [InlineData(new byte[] { 0, 0, 0, 10, 0, 3, 0, 9, 0, 0, 0, 1, 0, 50 })] // client id longer than the frame
    [InlineData(new byte[] { 0, 0, 0, 10, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff })] // unknown API key
    public async Task Bad_frames_close_only_their_own_connection(byte[] garbage)
    {
        using var bad = await _broker.ConnectAsync();
        await bad.SendRawAsync(garbage);
        Assert.True(await bad.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)));
        var metadata = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [] }, 9);
        Assert.NotNull(metadata.ClusterId);
    }

    [Fact]
    public async Task A_truncated_request_body_closes_the_connection()
    {
        using var bad = await _broker.ConnectAsync();
        using var writer = new KafkaWriter();
        writer.Advance(4);
        new RequestHeader(ApiKey.Produce, 9, 1, "x").Write(writer);
        writer.WriteUnsignedVarint(100); // transactional id claims 99 bytes that are not there
        writer.PatchInt32(0, writer.Position - 4);
        await bad.SendRawAsync(writer.WrittenMemory);
        Assert.True(await bad.IsClosedByPeerAsync(TimeSpan.FromSeconds(10)));
    }
}
