using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>A broker that never auto-creates topics, so admin tests see exactly what they created.</summary>
public sealed class NoAutoCreateBrokerFixture : BrokerFixture
{
    protected override BrokerOptions Options => new() { DefaultPartitions = 1, AutoCreateTopics = false };
}

/// <summary>
/// Topic administration through each client's admin API: CreateTopics (with a config),
/// Metadata, DescribeConfigs, CreatePartitions, DeleteTopics, DeleteRecords.
/// </summary>
public sealed class AdminTests(NoAutoCreateBrokerFixture fixture) : IClassFixture<NoAutoCreateBrokerFixture>
{
    public static IEnumerable<object[]> AdminClients() => KafkaClients.AdminNames();

    [Theory]
    [MemberData(nameof(AdminClients))]
    public Task Create_describe_add_partitions_delete(string clientName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var c = KafkaClients.Script(clientName);
        var b = fixture.Bootstrap;
        var topic = Topics.Unique($"admin-{clientName}");

        await c.CommandAsync("create-topic", b, "--topic", topic, "--partitions", "3", "--config", "retention.ms=3600000");

        var listed = await c.CommandAsync("list-topics", b);
        Assert.Contains(topic, listed.GetProperty("topics").EnumerateArray().Select(t => t.GetString()));

        var described = await c.CommandAsync("describe-topic", b, "--topic", topic);
        Assert.True(described.GetProperty("exists").GetBoolean(), described.ToString());
        AssertPartitions(described, 3);
        Assert.True(described.GetProperty("configs").TryGetProperty("retention.ms", out var retention),
            $"retention.ms missing from DescribeConfigs: {described}");
        Assert.Equal("3600000", retention.GetString());

        // kcat sees it too (metadata for all topics: naming one could auto-create it elsewhere).
        var md = await KcatClient.MetadataAsync(b);
        var kcatTopic = md.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("topic").GetString() == topic);
        Assert.Equal(3, kcatTopic.GetProperty("partitions").GetArrayLength());

        // Creating it again fails with TOPIC_ALREADY_EXISTS.
        var again = await c.RunAsync("create-topic", b, ["--topic", topic, "--partitions", "3"]);
        Assert.True(again.ExitCode != 0, $"creating {topic} twice succeeded. {again.Describe()}");
        Assert.Contains("exist", again.Stdout + again.Stderr, StringComparison.OrdinalIgnoreCase);

        await c.CommandAsync("create-partitions", b, "--topic", topic, "--count", "5");
        described = await c.CommandAsync("describe-topic", b, "--topic", topic);
        AssertPartitions(described, 5);

        // The new partition takes records.
        var produced = await KafkaClients.Confluent.ProduceAsync(b, topic, TestData.Numbered("p4", 3, partition: 4));
        Assert.Equal([0L, 1L, 2L], produced.Acks!.Select(a => a.Offset));
        Assert.All(produced.Acks!, a => Assert.Equal(4, a.Partition));

        await c.CommandAsync("delete-topic", b, "--topic", topic);
        listed = await c.CommandAsync("list-topics", b);
        Assert.DoesNotContain(topic, listed.GetProperty("topics").EnumerateArray().Select(t => t.GetString()));
        described = await c.CommandAsync("describe-topic", b, "--topic", topic);
        Assert.False(described.GetProperty("exists").GetBoolean(), $"deleted topic still described: {described}");
    });

    [Theory]
    [MemberData(nameof(AdminClients))]
    public Task Cluster_metadata_names_this_broker(string clientName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var c = KafkaClients.Script(clientName);
        var cluster = await c.CommandAsync("cluster", fixture.Bootstrap);
        var broker = Assert.Single(cluster.GetProperty("brokers").EnumerateArray());
        Assert.Equal(BrokerProcess.NodeId, broker.GetProperty("id").GetInt32());
        Assert.Equal("127.0.0.1", broker.GetProperty("host").GetString());
        Assert.Equal(fixture.Broker.Port, broker.GetProperty("port").GetInt32());
        Assert.Equal(BrokerProcess.NodeId, cluster.GetProperty("controller").GetInt32());
    });

    [Fact]
    public Task DeleteRecords_moves_the_log_start_offset() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        // Only kafkajs among these clients exposes DeleteRecords (deleteTopicRecords).
        var b = fixture.Bootstrap;
        var topic = Topics.Unique("delete-records");
        await KafkaClients.Confluent.CommandAsync("create-topic", b, "--topic", topic, "--partitions", "1");
        var records = TestData.Numbered("dr", 10, partition: 0);
        var produced = await KafkaClients.Confluent.ProduceAsync(b, topic, records);
        var expected = RecordAssert.Expect(records, produced);

        await KafkaClients.Kafkajs.CommandAsync("delete-records", b, "--topic", topic, "--partition", "0", "--offset", "4");

        foreach (var c in new[] { KafkaClients.Kafkajs, KafkaClients.Confluent, KafkaClients.KafkaPython })
        {
            var p0 = (await c.CommandAsync("offsets", b, "--topic", topic, "--partitions", "0"))
                .GetProperty("partitions").EnumerateArray().Single();
            Assert.True(p0.GetProperty("low").GetInt64() == 4 && p0.GetProperty("high").GetInt64() == 10,
                $"{c.Name} offsets after DeleteRecords(4): {p0}");
        }
        var got = await KafkaClients.Confluent.ConsumeAsync(b, topic, 6, StartAt.Earliest, partitions: [0]);
        RecordAssert.NoProblems(RecordAssert.Compare("after DeleteRecords(4)", expected.Skip(4).ToList(), got, KafkaClients.Confluent));
    });

    private static void AssertPartitions(JsonElement described, int count)
    {
        var parts = described.GetProperty("partitions").EnumerateArray().ToList();
        Assert.True(parts.Count == count, $"expected {count} partitions: {described}");
        Assert.Equal(Enumerable.Range(0, count), parts.Select(p => p.GetProperty("partition").GetInt32()));
        Assert.All(parts, p => Assert.Equal(BrokerProcess.NodeId, p.GetProperty("leader").GetInt32()));
    }
}
