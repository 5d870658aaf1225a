using Cairn.Broker.Handlers;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;

namespace Cairn.Tests.Handlers;

/// <summary>
/// A partition recovery left offline, as the handlers show it: KAFKA_STORAGE_ERROR where its log is needed, leaderless
/// with its replica offline in Metadata (as Kafka shows a partition whose only replica's log directory is offline),
/// and the other partitions answering as usual.
/// </summary>
public sealed class OfflinePartitionHandlerTests
{
    private readonly FakeTopic _orders = new("orders", 2);
    private readonly FakeTopicCatalog _topics;
    private readonly ClusterIdentity _cluster = new(7, "offline-tests", "broker.example", 19092);

    public OfflinePartitionHandlerTests()
    {
        _topics = new FakeTopicCatalog(_orders);
        _orders[0].OfflineReason = "orders-0: segment 0 ends at offset 30 but the next segment starts at 60";
        _orders[0].HighWatermark = 0;
        _orders[1].HighWatermark = 50;
        _orders[1].LogStartOffset = 20;
    }

    [Fact]
    public async Task ListOffsets_answers_KAFKA_STORAGE_ERROR_for_the_offline_partition_and_offsets_for_the_other()
    {
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new()
            {
                Name = "orders",
                Partitions = [.. from p in new[] { 0, 1 } from ts in new long[] { -1, -2, -3, 1_700_000_000_000 }
                              select new ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition { PartitionIndex = p, Timestamp = ts }],
            }],
        };

        var response = await HandlerFixture.CallAsync(new ListOffsetsHandler(_topics), request, 9);

        var answers = Assert.Single(response!.Topics).Partitions;
        Assert.All(answers.Where(a => a.PartitionIndex == 0), a => Assert.Equal(((short)ErrorCode.KafkaStorageError, -1L), (a.ErrorCode, a.Offset)));
        var online = answers.Where(a => a.PartitionIndex == 1).ToList();
        Assert.All(online, a => Assert.Equal((short)ErrorCode.None, a.ErrorCode));
        Assert.Equal([50L, 20L], online.Take(2).Select(a => a.Offset));
    }

    [Theory]
    [InlineData(12)]
    [InlineData(5)]
    [InlineData(1)]
    public async Task Metadata_shows_the_offline_partition_leaderless_with_its_replica_offline(short version)
    {
        var response = await HandlerFixture.CallAsync(new MetadataHandler(_cluster, _topics), new MetadataRequest { Topics = null }, version);

        var topic = Assert.Single(response!.Topics);
        Assert.Equal((short)ErrorCode.None, topic.ErrorCode);
        var offline = topic.Partitions.Single(p => p.PartitionIndex == 0);
        Assert.Equal(((short)ErrorCode.LeaderNotAvailable, -1), (offline.ErrorCode, offline.LeaderId));
        Assert.Equal([7], offline.ReplicaNodes);
        Assert.Equal([7], offline.IsrNodes);
        Assert.Equal([7], offline.OfflineReplicas);
        var online = topic.Partitions.Single(p => p.PartitionIndex == 1);
        Assert.Equal(((short)ErrorCode.None, 7), (online.ErrorCode, online.LeaderId));
        Assert.Empty(online.OfflineReplicas);
    }

    [Fact]
    public async Task DescribeLogDirs_lists_only_the_online_partition()
    {
        _orders[1].SizeInBytes = 512;
        var settings = new StaticBrokerConfig(1, 1, false, 1 << 20, Path.GetTempPath(), false, new Dictionary<string, string>());

        var dirs = await HandlerFixture.CallAsync(new DescribeLogDirsHandler(settings, _topics), new DescribeLogDirsRequest { Topics = null }, 4);

        var topic = Assert.Single(Assert.Single(dirs!.Results).Topics);
        Assert.Equal([(1, 512L)], topic.Partitions.Select(p => (p.PartitionIndex, p.PartitionSize)).ToArray());
    }
}
