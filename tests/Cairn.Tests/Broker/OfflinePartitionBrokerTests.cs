using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Storage;
using Cairn.Tests.Storage;

namespace Cairn.Tests.Broker;

/// <summary>
/// A data directory with topic "t" of two partitions, four full segments each (offsets 0..119, segment bases 0, 30, 60,
/// 90, an empty active one at 120), written cleanly; <see cref="RemoveSegment"/> makes the gap start-up refuses to paper over.
/// </summary>
internal sealed class GappedDataDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cairn-gapped-" + Guid.NewGuid().ToString("N"));

    public static async Task<GappedDataDirectory> CreateAsync(int partitions = 2)
    {
        var d = new GappedDataDirectory();
        await using var m = await LogManager.OpenAsync(new StorageOptions { DataDirectory = d.Path, RunBackgroundTasks = false });
        foreach (var p in m.CreateTopic("t", partitions).Topic!.Partitions)
            for (int s = 0; s < 4; s++)
            {
                for (int i = 0; i < 3; i++) Assert.True(p.Append(TestBatch.Simple(10, valueSize: 32)).Succeeded);
                p.Roll();
            }
        return d;
    }

    public string SegmentFile(int partition, long baseOffset) =>
        System.IO.Path.Combine(Path, "t-" + partition, baseOffset.ToString("D20") + ".log");

    public void RemoveSegment(int partition, long baseOffset) => File.Delete(SegmentFile(partition, baseOffset));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A broker started on a data directory with a gap in t-0: what clients and operators see of the offline partition.</summary>
public sealed class OfflinePartitionBrokerTests
{
    internal static Task<BrokerHarness> StartAsync(string dataDir) => BrokerHarness.StartAsync(o => o with
    {
        AutoCreateTopics = false,
        Admin = o.Admin with { Listen = "127.0.0.1:0" },
    }, dataDir);

    internal static async Task<MetadataResponse> MetadataAsync(WireClient client) =>
        await client.SendAsync<MetadataRequest, MetadataResponse>(new MetadataRequest { Topics = [new() { Name = "t" }] }, 12);

    internal static async Task<ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse[]> LatestAsync(WireClient client)
    {
        var response = await client.SendAsync<ListOffsetsRequest, ListOffsetsResponse>(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }, new() { PartitionIndex = 1, Timestamp = -1 }] }],
        }, 9);
        return [.. Assert.Single(response.Topics).Partitions.OrderBy(p => p.PartitionIndex)];
    }

    internal static async Task<FetchResponse.FetchableTopicResponse.PartitionData> FetchAsync(WireClient client, int partition, long offset)
    {
        var response = await client.SendAsync<FetchRequest, FetchResponse>(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 50 << 20, SessionEpoch = -1,
            Topics = [new() { Topic = "t", Partitions = [new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
        }, 12);
        return Assert.Single(Assert.Single(response.Responses).Partitions);
    }

    internal static async Task<short> ProduceAsync(WireClient client, int partition)
    {
        var response = await client.SendAsync<ProduceRequest, ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = 5000,
            TopicData = [new() { Name = "t", PartitionData = [new() { Index = partition, Records = new MemoryRecords(TestBatch.Simple(1)) }] }],
        }, 9);
        return response.Responses[0].PartitionResponses[0].ErrorCode;
    }

    internal static byte[] Bytes(RecordsPayload? payload)
    {
        if (payload is null) return [];
        var bytes = new byte[payload.Length];
        payload.CopyTo(bytes);
        return bytes;
    }

    [Fact]
    public async Task Clients_get_KAFKA_STORAGE_ERROR_and_a_leaderless_partition_operators_a_reason_and_a_metric_while_the_other_partition_serves()
    {
        using var data = await GappedDataDirectory.CreateAsync();
        data.RemoveSegment(0, 30);
        await using var broker = await StartAsync(data.Path);
        using var client = await broker.ConnectAsync();
        int node = broker.Broker.Cluster.NodeId;

        var topic = Assert.Single((await MetadataAsync(client)).Topics);
        Assert.Equal((short)ErrorCode.None, topic.ErrorCode);
        var p0 = topic.Partitions.Single(p => p.PartitionIndex == 0);
        Assert.Equal(((short)ErrorCode.LeaderNotAvailable, -1), (p0.ErrorCode, p0.LeaderId));
        Assert.Equal([node], p0.OfflineReplicas);
        var p1 = topic.Partitions.Single(p => p.PartitionIndex == 1);
        Assert.Equal(((short)ErrorCode.None, node), (p1.ErrorCode, p1.LeaderId));

        var latest = await LatestAsync(client);
        Assert.Equal((short)ErrorCode.KafkaStorageError, latest[0].ErrorCode);
        Assert.Equal(((short)ErrorCode.None, 120L), (latest[1].ErrorCode, latest[1].Offset));
        Assert.Equal((short)ErrorCode.KafkaStorageError, (await FetchAsync(client, 0, 0)).ErrorCode);
        var fetched = await FetchAsync(client, 1, 0);
        Assert.Equal((short)ErrorCode.None, fetched.ErrorCode);
        Assert.NotEmpty(Bytes(fetched.Records));
        Assert.Equal((short)ErrorCode.KafkaStorageError, await ProduceAsync(client, 0));
        Assert.Equal((short)ErrorCode.None, await ProduceAsync(client, 1));

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{broker.Broker.AdminEndPoint!.Port}/"), Timeout = TimeSpan.FromSeconds(30) };
        using var doc = JsonDocument.Parse(await http.GetStringAsync("api/v1/topics/t"));
        var partitions = doc.RootElement.GetProperty("partitions");
        Assert.True(partitions[0].GetProperty("offline").GetBoolean());
        Assert.Contains("segment 0 ends at offset 30 but the next segment starts at 60", partitions[0].GetProperty("offlineReason").GetString(), StringComparison.Ordinal);
        Assert.Equal(-1, partitions[0].GetProperty("leader").GetInt32());
        Assert.Equal(JsonValueKind.Null, partitions[0].GetProperty("logEndOffset").ValueKind);
        Assert.False(partitions[1].GetProperty("offline").GetBoolean());
        Assert.Equal(JsonValueKind.Null, partitions[1].GetProperty("offlineReason").ValueKind);
        Assert.Equal(121, partitions[1].GetProperty("logEndOffset").GetInt64());

        var metrics = await http.GetStringAsync("metrics");
        Assert.Matches(new Regex(@"^cairn_offline_partitions(\{[^}]*\})? 1$", RegexOptions.Multiline), metrics);
        Assert.DoesNotMatch(new Regex(@"^cairn_partition_log_end_offset\{[^}]*partition=""0""[^}]*\}", RegexOptions.Multiline), metrics);
        Assert.Matches(new Regex(@"^cairn_partition_log_end_offset\{[^}]*partition=""1""[^}]*\} 121$", RegexOptions.Multiline), metrics);
    }
}
