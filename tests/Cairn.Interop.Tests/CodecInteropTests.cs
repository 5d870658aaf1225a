using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>
/// Every client produces with every codec it supports (one partition per codec), and every
/// client — the producer itself and the three others — consumes it all back byte for byte.
/// </summary>
public sealed class CodecInteropTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private const int RecordsPerCodec = 40;

    public static IEnumerable<object[]> Producers() => KafkaClients.Names();

    [Theory]
    [MemberData(nameof(Producers))]
    public Task Every_codec_round_trips_through_every_client(string producerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var producer = KafkaClients.ByName(producerName);
        var topic = Topics.Unique($"codec-{producerName}");
        var codecs = producer.Caps.Codecs;
        Assert.True(codecs.Count <= BrokerFixture.DefaultPartitions);
        var baseTs = TestData.RecentBaseTimestamp();

        var expected = new List<Expected>();
        var problems = new List<string>();
        for (var p = 0; p < codecs.Count; p++)
        {
            var records = TestData.Mixed(producer.Caps, RecordsPerCodec, seed: 1000 + p, partition: p, baseTimestamp: baseTs);
            var produced = await producer.ProduceAsync(fixture.Bootstrap, topic, records, codecs[p]);
            expected.AddRange(RecordAssert.Expect(records, produced));
        }

        foreach (var consumer in KafkaClients.All)
        {
            // A consumer reads the partitions whose codec it can decompress (kafkajs: no lz4/zstd).
            var readable = Enumerable.Range(0, codecs.Count).Where(p => consumer.Caps.Codecs.Contains(codecs[p])).ToArray();
            var want = expected.Where(e => readable.Contains(e.Record.Partition)).ToList();
            var label = $"{producerName} → {string.Join('/', readable.Select(p => $"p{p}={codecs[p]}"))}";
            try
            {
                var got = readable.Length == codecs.Count
                    ? await consumer.ConsumeAsync(fixture.Bootstrap, topic, want.Count, StartAt.Earliest)
                    : await consumer.ConsumeAsync(fixture.Bootstrap, topic, want.Count, StartAt.Earliest, partitions: readable);
                problems.AddRange(RecordAssert.Compare(label, want, got, consumer));
            }
            catch (Exception e) when (e is ExternalCommandException or TimeoutException or FormatException)
            {
                problems.Add($"[consumed by {consumer.Name}] {e.Message}");
            }
        }
        RecordAssert.NoProblems(problems, $"topic {topic}");
    });

    [Theory]
    [MemberData(nameof(Producers))]
    public Task Record_shapes_survive_every_client(string producerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        // null vs empty keys and values, 0x00 bytes, all byte values, a 100 kB value, headers
        // with binary / empty / null values, empty and non-ASCII names, duplicate names.
        var producer = KafkaClients.ByName(producerName);
        var topic = Topics.Unique($"shapes-{producerName}");
        var records = TestData.Shapes(producer.Caps, partition: 0);
        var produced = await producer.ProduceAsync(fixture.Bootstrap, topic, records);
        var expected = RecordAssert.Expect(records, produced);

        var problems = new List<string>();
        foreach (var consumer in KafkaClients.All)
        {
            try
            {
                var got = await consumer.ConsumeAsync(fixture.Bootstrap, topic, records.Count, StartAt.Earliest, partitions: [0]);
                problems.AddRange(RecordAssert.Compare($"shapes from {producerName}", expected, got, consumer));
            }
            catch (Exception e) when (e is ExternalCommandException or TimeoutException or FormatException)
            {
                problems.Add($"[consumed by {consumer.Name}] {e.Message}");
            }
        }
        RecordAssert.NoProblems(problems, $"topic {topic}");
    });

    [Theory]
    [InlineData("confluent-kafka")]
    [InlineData("kafkajs")]
    public Task Idempotent_producer_gets_a_producer_id_and_consecutive_offsets(string producerName) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        // enable.idempotence / idempotent: the client sends InitProducerId, then batches with a
        // producer id, epoch and sequence numbers.
        var producer = KafkaClients.ByName(producerName);
        var topic = Topics.Unique($"idem-{producerName}");
        var records = TestData.Numbered("idem", 300, partition: 0);
        var produced = await producer.ProduceAsync(fixture.Bootstrap, topic, records, codec: "gzip", idempotent: true);
        var expected = RecordAssert.Expect(records, produced);
        var got = await KafkaClients.Confluent.ConsumeAsync(fixture.Bootstrap, topic, records.Count, StartAt.Earliest, partitions: [0]);
        RecordAssert.NoProblems(RecordAssert.Compare($"idempotent {producerName}", expected, got, KafkaClients.Confluent));
    });
}
