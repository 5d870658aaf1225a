using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>
/// Where consumption starts: earliest, latest (only records produced afterwards), a given
/// offset, and a timestamp (first record with timestamp >= it), for every client; and the
/// ListOffsets answers each client's offset API gives.
/// </summary>
public sealed class PositionTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private const int N = 20;
    private const long StepMs = 1000;

    public static IEnumerable<object[]> Consumers() => KafkaClients.Names();

    /// <summary>N records on partition 0 with timestamps base, base+1s, … produced by confluent-kafka.</summary>
    private async Task<(string Topic, List<Expected> Expected, long BaseTs)> SeedAsync(string name)
    {
        var topic = Topics.Unique(name);
        var baseTs = TestData.RecentBaseTimestamp();
        var records = TestData.Numbered("pos", N, partition: 0, baseTimestamp: baseTs, stepMs: StepMs);
        var produced = await KafkaClients.Confluent.ProduceAsync(fixture.Bootstrap, topic, records);
        return (topic, RecordAssert.Expect(records, produced), baseTs);
    }

    [Theory]
    [MemberData(nameof(Consumers))]
    public Task From_earliest(string consumerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var consumer = KafkaClients.ByName(consumerName);
        var (topic, expected, _) = await SeedAsync($"earliest-{consumerName}");
        var got = await consumer.ConsumeAsync(fixture.Bootstrap, topic, N, StartAt.Earliest, partitions: [0]);
        RecordAssert.NoProblems(RecordAssert.Compare("earliest", expected, got, consumer));
    });

    [Theory]
    [MemberData(nameof(Consumers))]
    public Task From_offset(string consumerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var consumer = KafkaClients.ByName(consumerName);
        var (topic, expected, _) = await SeedAsync($"offset-{consumerName}");
        var got = await consumer.ConsumeAsync(fixture.Bootstrap, topic, N - 7, StartAt.Offset(7), partitions: [0]);
        Assert.True(got.Records.Count > 0, $"no records from offset 7\n{got.Diagnostics}");
        Assert.Equal(7, got.Records[0].Offset);
        RecordAssert.NoProblems(RecordAssert.Compare("offset 7", expected.Skip(7).ToList(), got, consumer));
    });

    [Theory]
    [MemberData(nameof(Consumers))]
    public Task From_timestamp(string consumerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var consumer = KafkaClients.ByName(consumerName);
        var (topic, expected, baseTs) = await SeedAsync($"time-{consumerName}");

        // Between two timestamps: the first record at or after it is #11.
        var got = await consumer.ConsumeAsync(fixture.Bootstrap, topic, N - 11, StartAt.Timestamp(baseTs + 10 * StepMs + 500), partitions: [0]);
        RecordAssert.NoProblems(RecordAssert.Compare("timestamp between #10 and #11", expected.Skip(11).ToList(), got, consumer));

        // Exactly a record's timestamp: that record (#5) comes first.
        got = await consumer.ConsumeAsync(fixture.Bootstrap, topic, N - 5, StartAt.Timestamp(baseTs + 5 * StepMs), partitions: [0]);
        RecordAssert.NoProblems(RecordAssert.Compare("timestamp of #5", expected.Skip(5).ToList(), got, consumer));
    });

    [Theory]
    [MemberData(nameof(Consumers))]
    public Task From_latest_sees_only_later_records(string consumerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var consumer = KafkaClients.ByName(consumerName);
        var (topic, _, _) = await SeedAsync($"latest-{consumerName}");

        await using var running = await consumer.StartConsumeAsync(fixture.Bootstrap, topic, 5, StartAt.Latest, partitions: [0]);
        var later = TestData.Numbered("late", 5, partition: 0);
        var produced = await KafkaClients.Confluent.ProduceAsync(fixture.Bootstrap, topic, later);
        var expected = RecordAssert.Expect(later, produced, firstOffset: N);
        var got = await running.FinishAsync();
        RecordAssert.NoProblems(RecordAssert.Compare("latest", expected, got, consumer, compareTimestamps: false));
    });

    public static IEnumerable<object[]> OffsetApis() => KafkaClients.AdminNames();

    [Theory]
    [MemberData(nameof(OffsetApis))]
    public Task ListOffsets_through_client_offset_apis(string clientName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var client = KafkaClients.Script(clientName);
        var (topic, _, baseTs) = await SeedAsync($"listoffsets-{clientName}");

        var offsets = await client.CommandAsync("offsets", fixture.Bootstrap, "--topic", topic, "--partitions", "0");
        var p0 = Partition0(offsets);
        Assert.Equal(0, p0.GetProperty("low").GetInt64());
        Assert.Equal(N, p0.GetProperty("high").GetInt64());

        async Task<long> ForTime(long ts) =>
            Partition0(await client.CommandAsync("offsets-for-time", fixture.Bootstrap, "--topic", topic, "--partitions", "0",
                "--timestamp", ts.ToString())).GetProperty("offset").GetInt64();

        Assert.Equal(11, await ForTime(baseTs + 10 * StepMs + 500));
        Assert.Equal(5, await ForTime(baseTs + 5 * StepMs));
        Assert.Equal(0, await ForTime(baseTs - 60_000));
        var after = await ForTime(baseTs + N * StepMs + 60_000);
        // No record that late: the broker answers -1; kafkajs substitutes the high watermark.
        Assert.Equal(clientName == "kafkajs" ? N : -1, after);
    });

    [Fact]
    public Task ListOffsets_by_timestamp_through_kcat() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var (topic, _, baseTs) = await SeedAsync("listoffsets-kcat");
        Assert.Equal(11, await KcatClient.OffsetForTimeAsync(fixture.Bootstrap, topic, 0, baseTs + 10 * StepMs + 500));
        Assert.Equal(5, await KcatClient.OffsetForTimeAsync(fixture.Bootstrap, topic, 0, baseTs + 5 * StepMs));
        Assert.Equal(-1, await KcatClient.OffsetForTimeAsync(fixture.Bootstrap, topic, 0, baseTs + N * StepMs + 60_000));
    });

    private static JsonElement Partition0(JsonElement result) =>
        result.GetProperty("partitions").EnumerateArray().Single(p => p.GetProperty("partition").GetInt32() == 0);
}
