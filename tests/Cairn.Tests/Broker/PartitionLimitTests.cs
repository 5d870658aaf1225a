using Cairn.Protocol;
using Cairn.Protocol.Messages;

namespace Cairn.Tests.Broker;

/// <summary>
/// max.partitions (KIP-578): CreateTopics, CreatePartitions and auto-creation (Metadata) that would take the broker past
/// it answer POLICY_VIOLATION with a message naming the limit, validate-only requests alike, and create nothing.
/// </summary>
public sealed class PartitionLimitTests : IAsyncLifetime
{
    private BrokerHarness _broker = null!;
    private WireClient _client = null!;

    public async Task InitializeAsync()
    {
        _broker = await BrokerHarness.StartAsync(o => o with { MaxPartitions = 5, DefaultPartitions = 2 });
        _client = await _broker.ConnectAsync();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _broker.DisposeAsync();
    }

    private Task<CreateTopicsResponse> CreateAsync(string name, int partitions, bool validateOnly = false) =>
        _client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(new()
        {
            ValidateOnly = validateOnly,
            Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }],
        }, 7);

    private Task<CreatePartitionsResponse> GrowAsync(string name, int count, bool validateOnly = false) =>
        _client.SendAsync<CreatePartitionsRequest, CreatePartitionsResponse>(new()
        {
            ValidateOnly = validateOnly,
            Topics = [new() { Name = name, Count = count, Assignments = null }],
        }, 3);

    [Fact]
    public async Task Creations_past_max_partitions_are_refused_with_POLICY_VIOLATION_and_create_nothing()
    {
        Assert.Equal(0, (await CreateAsync("three", 3)).Topics[0].ErrorCode);

        foreach (bool validateOnly in new[] { true, false })
        {
            var big = (await CreateAsync("big", 100_000, validateOnly)).Topics[0];
            Assert.Equal((short)ErrorCode.PolicyViolation, big.ErrorCode);
            Assert.Contains("max.partitions=5", big.ErrorMessage);
            var three = (await CreateAsync("three-more", 3, validateOnly)).Topics[0];
            Assert.Equal((short)ErrorCode.PolicyViolation, three.ErrorCode);

            var grow = (await GrowAsync("three", 6, validateOnly)).Results[0];
            Assert.Equal((short)ErrorCode.PolicyViolation, grow.ErrorCode);
            Assert.Contains("max.partitions=5", grow.ErrorMessage);
        }
        Assert.Equal(0, (await GrowAsync("three", 4, validateOnly: true)).Results[0].ErrorCode);
        Assert.Equal(0, (await GrowAsync("three", 4)).Results[0].ErrorCode);

        // Auto-creation of a 2-partition topic (num.partitions=2) with 4 of 5 taken: refused too.
        var meta = await _client.SendAsync<MetadataRequest, MetadataResponse>(new()
        {
            Topics = [new() { Name = "auto" }], AllowAutoTopicCreation = true,
        }, 9);
        Assert.Equal((short)ErrorCode.PolicyViolation, meta.Topics.Single(t => t.Name == "auto").ErrorCode);

        // Exactly up to the limit is fine.
        Assert.Equal(0, (await CreateAsync("one", 1)).Topics[0].ErrorCode);
        var all = await _client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = null }, 9);
        Assert.Equal(["one", "three"], all.Topics.Select(t => t.Name!).Order());
        Assert.Equal(5, all.Topics.Sum(t => t.Partitions.Count));
        Assert.False(Directory.Exists(Path.Combine(_broker.DataDir, "big-0")));
        Assert.False(Directory.Exists(Path.Combine(_broker.DataDir, "auto-0")));
    }
}
