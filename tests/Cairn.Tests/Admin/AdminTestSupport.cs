using System.Net.Http.Json;
using System.Text.Json;
using Cairn.Broker;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Admin;

/// <summary>An in-process broker with the admin server on an ephemeral loopback port, an HTTP client for it and a Kafka wire client.</summary>
public sealed class AdminBroker : IAsyncDisposable
{
    private AdminBroker(BrokerHarness harness, WireClient kafka, HttpClient http)
    {
        Harness = harness;
        Kafka = kafka;
        Http = http;
    }

    public BrokerHarness Harness { get; }
    public WireClient Kafka { get; }
    public HttpClient Http { get; }
    public KafkaBroker Broker => Harness.Broker;
    public Uri BaseAddress => Http.BaseAddress!;

    public static async Task<AdminBroker> StartAsync(Func<BrokerOptions, BrokerOptions>? configure = null)
    {
        var harness = await BrokerHarness.StartAsync(o =>
        {
            o = o with
            {
                DefaultPartitions = 2,
                Admin = o.Admin with { Listen = "127.0.0.1:0" },
                Groups = o.Groups with { InitialRebalanceDelay = TimeSpan.Zero },
            };
            return configure is null ? o : configure(o);
        });
        var endpoint = harness.Broker.AdminEndPoint ?? throw new InvalidOperationException("the admin server did not start");
        Assert.NotEqual(0, endpoint.Port);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{endpoint.Port}/"), Timeout = TimeSpan.FromSeconds(30) };
        return new AdminBroker(harness, await harness.ConnectAsync(), http);
    }

    public async Task ProduceAsync(string topic, int partition, int count, long firstTimestamp = 1_700_000_000_000)
    {
        var response = await Kafka.SendAsync<ProduceRequest, ProduceResponse>(new ProduceRequest
        {
            Acks = -1, TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = new MemoryRecords(Batches.Build(count, firstTimestamp: firstTimestamp)) }] }],
        }, 9);
        Assert.Equal(0, response.Responses[0].PartitionResponses[0].ErrorCode);
    }

    public async Task CreateTopicAsync(string topic, int partitions = 2)
    {
        var response = await Kafka.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = topic }], AllowAutoTopicCreation = true }, 9);
        Assert.Equal(0, response.Topics[0].ErrorCode);
    }

    /// <summary>A standalone commit (generation -1, no member), as a consumer with manual assignment makes.</summary>
    public async Task<short> CommitAsync(string group, string topic, int partition, long offset)
    {
        var response = await Kafka.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(new()
        {
            GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, CommittedOffset = offset }] }],
        }, 8);
        return response.Topics[0].Partitions[0].ErrorCode;
    }

    public async Task<long> CommittedAsync(string group, string topic, int partition)
    {
        var fetched = await Kafka.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(new()
        {
            Groups = [new() { GroupId = group, Topics = [new() { Name = topic, PartitionIndexes = [partition] }] }],
        }, 8);
        return fetched.Groups[0].Topics.Single().Partitions.Single().CommittedOffset;
    }

    /// <summary>Forms a one-member consumer group over the wire (JoinGroup v7 twice, then SyncGroup); returns the member id.</summary>
    public async Task<string> JoinGroupAsync(string group, string topic)
    {
        JoinGroupRequest Join(string memberId) => new()
        {
            GroupId = group, MemberId = memberId, SessionTimeoutMs = 30_000, RebalanceTimeoutMs = 30_000, ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = ConsumerProtocol.Write(new ConsumerProtocolSubscription { Topics = [topic] }) }],
        };
        var first = await Kafka.SendAsync<JoinGroupRequest, JoinGroupResponse>(Join(""), 7);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        var joined = await Kafka.SendAsync<JoinGroupRequest, JoinGroupResponse>(Join(first.MemberId), 7);
        Assert.Equal(0, joined.ErrorCode);
        var assignment = ConsumerProtocol.Write(new ConsumerProtocolAssignment { AssignedPartitions = [new() { Topic = topic, Partitions = [0, 1] }] });
        var sync = await Kafka.SendAsync<SyncGroupRequest, SyncGroupResponse>(new()
        {
            GroupId = group, GenerationId = joined.GenerationId, MemberId = joined.MemberId, ProtocolType = "consumer", ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = assignment }],
        }, 5);
        Assert.Equal(0, sync.ErrorCode);
        return joined.MemberId;
    }

    public async Task LeaveGroupAsync(string group, string memberId)
    {
        var left = await Kafka.SendAsync<LeaveGroupRequest, LeaveGroupResponse>(new() { GroupId = group, Members = [new() { MemberId = memberId }] }, 4);
        Assert.Equal(0, left.ErrorCode);
    }

    public async Task<JsonElement> GetJsonAsync(string path, System.Net.HttpStatusCode expected = System.Net.HttpStatusCode.OK)
    {
        using var response = await Http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"GET {path}: expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public async Task<(System.Net.HttpStatusCode Status, JsonElement Body)> PostJsonAsync(string path, string json, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        configure?.Invoke(request);
        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(body).RootElement.Clone());
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        Kafka.Dispose();
        await Harness.DisposeAsync();
    }
}
