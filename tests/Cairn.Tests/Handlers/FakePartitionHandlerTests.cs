using Cairn.Broker.Handlers;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Storage;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Handlers;

/// <summary>
/// The log handlers over in-memory partitions (no files, no logs): everything they answer comes through the partition
/// and topic views, so another storage behind those views serves the same requests.
/// </summary>
public sealed class FakePartitionHandlerTests
{
    private readonly FakeTopic _orders = new("orders", 2);
    private readonly FakeTopicCatalog _topics;

    public FakePartitionHandlerTests() => _topics = new FakeTopicCatalog(_orders);

    private static ProduceRequest ProduceOf(params (string Topic, int Partition, byte[] Batch)[] parts) => new()
    {
        Acks = -1, TimeoutMs = 5000,
        TopicData = parts.GroupBy(p => p.Topic).Select(g => new ProduceRequest.TopicProduceData
        {
            Name = g.Key,
            PartitionData = g.Select(p => new ProduceRequest.TopicProduceData.PartitionProduceData { Index = p.Partition, Records = new MemoryRecords(p.Batch) }).ToList(),
        }).ToList(),
    };

    [Fact]
    public async Task Produce_answers_with_what_the_partition_appended()
    {
        var batch = Batches.Build(3);
        _orders[1].AppendAnswer = new AppendResult(ErrorCode.None, BaseOffset: 40, LastOffset: 42, LogAppendTime: 1_700_000_000_123, LogStartOffset: 7);

        var response = await HandlerFixture.CallAsync(new ProduceHandler(_topics), ProduceOf(("orders", 1, batch)), 9);

        var result = Assert.Single(Assert.Single(response!.Responses).PartitionResponses);
        Assert.Equal((short)ErrorCode.None, result.ErrorCode);
        Assert.Equal((40L, 1_700_000_000_123L, 7L), (result.BaseOffset, result.LogAppendTimeMs, result.LogStartOffset));
        var (records, acksAll) = Assert.Single(_orders[1].Appends);
        Assert.Equal(batch, records);
        Assert.True(acksAll);
        Assert.Empty(_orders[0].Appends);
    }

    [Fact]
    public async Task Produce_whose_append_throws_an_IO_error_answers_KAFKA_STORAGE_ERROR_for_every_partition()
    {
        _orders[0].AppendFailure = new IOException("disk gone");
        var request = ProduceOf(("orders", 1, Batches.Build(1)), ("orders", 0, Batches.Build(2)), ("other", 0, Batches.Build(1)));

        var response = await HandlerFixture.CallUnderErrorPolicyAsync(new ProduceHandler(_topics), request, 9);

        var partitions = response!.Responses.SelectMany(t => t.PartitionResponses.Select(p => (t.Name, p.Index, p.ErrorCode, p.BaseOffset))).ToArray();
        Assert.Equal(
            [("orders", 1, (short)ErrorCode.KafkaStorageError, -1L), ("orders", 0, (short)ErrorCode.KafkaStorageError, -1L), ("other", 0, (short)ErrorCode.KafkaStorageError, -1L)],
            partitions);
        Assert.Single(_orders[1].Appends); // written before partition 0 failed; the error response still covers the whole request
    }

    private async Task<ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse[]> ListOffsetsAsync(int partition, params long[] timestamps)
    {
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "orders", Partitions = [.. timestamps.Select(t => new ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition { PartitionIndex = partition, Timestamp = t })] }],
        };
        var response = await HandlerFixture.CallAsync(new ListOffsetsHandler(_topics), request, 9);
        return [.. Assert.Single(response!.Topics).Partitions];
    }

    [Fact]
    public async Task ListOffsets_answers_from_the_partitions_offsets_and_timestamp_lookups()
    {
        var partition = _orders[1];
        partition.HighWatermark = 50;
        partition.LogStartOffset = 20;
        partition.MaxTimestamp = new OffsetAndTimestamp(42, 9_000);
        partition.OffsetForTimestamp = t => t <= 5_000 ? new OffsetAndTimestamp(30, 5_000) : OffsetAndTimestamp.None;

        var answers = await ListOffsetsAsync(1, -1, -2, -4, -5, -3, 4_000, 6_000);

        Assert.All(answers, a => Assert.Equal((short)ErrorCode.None, a.ErrorCode));
        Assert.Equal(
            [(50L, -1L), (20L, -1L), (20L, -1L), (-1L, -1L), (42L, 9_000L), (30L, 5_000L), (-1L, -1L)],
            answers.Select(a => (a.Offset, a.Timestamp)).ToArray());
    }

    private static FetchRequest FetchOf(int partition, long offset, int minBytes = 0, int maxWaitMs = 0) => new()
    {
        MaxWaitMs = maxWaitMs, MinBytes = minBytes, MaxBytes = 50 << 20, SessionEpoch = -1,
        Topics = [new() { Topic = "orders", Partitions = [new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
    };

    [Fact]
    public async Task Fetch_answers_the_partitions_records_and_offsets()
    {
        var partition = _orders[0];
        partition.HighWatermark = 100;
        partition.LogStartOffset = 100;
        var batch = Batches.Build(4);
        partition.Publish(batch, 4);

        var response = await HandlerFixture.CallAsync(new FetchHandler(_topics, new FetchSessionCache()), FetchOf(0, 102), 12);

        var data = Assert.Single(Assert.Single(response!.Responses).Partitions);
        Assert.Equal((short)ErrorCode.None, data.ErrorCode);
        Assert.Equal((104L, 104L, 100L), (data.HighWatermark, data.LastStableOffset, data.LogStartOffset));
        var bytes = new byte[data.Records!.Length];
        data.Records.CopyTo(bytes);
        Assert.Equal(batch, bytes);
        Assert.Equal((102L, 1 << 20, true), Assert.Single(partition.Reads));
    }

    [Fact]
    public async Task Fetch_long_poll_wakes_on_the_partitions_append_notification()
    {
        var partition = _orders[1];
        var handler = new FetchHandler(_topics, new FetchSessionCache());

        // A minute to wait: only the publish below can end the poll while the test runs (the bound only stops a hang).
        var polling = HandlerFixture.CallAsync(handler, FetchOf(1, 0, minBytes: 1, maxWaitMs: 60_000), 12);
        await partition.WaitedOn.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(polling.IsCompleted);
        var batch = Batches.Build(2);
        partition.Publish(batch, 2);
        var response = await polling.WaitAsync(TimeSpan.FromSeconds(30));

        var data = Assert.Single(Assert.Single(response!.Responses).Partitions);
        Assert.Equal((short)ErrorCode.None, data.ErrorCode);
        Assert.Equal(2, data.HighWatermark);
        Assert.Equal(["v0", "v1"], Batches.ReadAll(data.Records).Select(r => System.Text.Encoding.UTF8.GetString(r.Value!.Value.Span)).ToArray());
        Assert.True(partition.Reads.Count >= 2); // read, waited, read again
    }

    [Fact]
    public async Task DeleteRecords_up_to_the_high_water_mark_and_DescribeLogDirs_sizes_come_from_the_partition()
    {
        _orders[0].HighWatermark = 80;
        _orders[0].SizeInBytes = 4096;
        _orders[1].SizeInBytes = 512;
        var delete = new DeleteRecordsRequest
        {
            TimeoutMs = 1000,
            Topics = [new() { Name = "orders", Partitions = [new() { PartitionIndex = 0, Offset = -1 }] }],
        };

        var deleted = await HandlerFixture.CallAsync(new DeleteRecordsHandler(_topics), delete, 2);
        var settings = new StaticBrokerConfig(1, 1, false, 1 << 20, Path.GetTempPath(), false, new Dictionary<string, string>());
        var dirs = await HandlerFixture.CallAsync(new DescribeLogDirsHandler(settings, _topics), new DescribeLogDirsRequest { Topics = null }, 4);

        var result = Assert.Single(Assert.Single(deleted!.Topics).Partitions);
        Assert.Equal(((short)ErrorCode.None, 80L), (result.ErrorCode, result.LowWatermark));
        Assert.Equal(80L, Assert.Single(_orders[0].DeletedBefore));
        var topic = Assert.Single(Assert.Single(dirs!.Results).Topics);
        Assert.Equal([(0, 4096L), (1, 512L)], topic.Partitions.Select(p => (p.PartitionIndex, p.PartitionSize)).ToArray());
    }
}
