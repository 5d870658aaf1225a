using Cairn.Client;
using Cairn.Protocol;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Client;

/// <summary>
/// Cairn's client on a real broker whose topic "t" (3 partitions, 120 records each) has partition 1 offline (a gap in
/// its segments): the healthy partitions stay usable, as with the Java client and librdkafka.
/// </summary>
public sealed class OfflinePartitionClientTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static KafkaClientOptions Options(BrokerHarness broker) => new()
    {
        BootstrapServers = $"127.0.0.1:{broker.Port}",
        ClientId = "offline-partition-tests",
        RequestTimeout = TimeSpan.FromSeconds(10),
        Retries = 3,
        RetryBackoff = TimeSpan.FromMilliseconds(20),
    };

    private static async Task<(GappedDataDirectory Data, BrokerHarness Broker)> StartAsync()
    {
        var data = await GappedDataDirectory.CreateAsync(partitions: 3);
        data.RemoveSegment(1, 30);
        return (data, await OfflinePartitionBrokerTests.StartAsync(data.Path));
    }

    [Fact]
    public async Task Producer_spreads_unkeyed_records_over_the_partitions_with_a_leader_and_fails_records_for_the_offline_one_after_bounded_retries()
    {
        var (data, broker) = await StartAsync();
        using var _ = data;
        await using var __ = broker;
        await using var producer = new KafkaProducer(Options(broker), new ProducerOptions { Linger = TimeSpan.Zero, DeliveryTimeout = TimeSpan.FromMinutes(2) });

        // One record at a time so that each starts a new sticky run: all land on 0 or 2, never on the offline 1.
        var delivered = new List<DeliveryResult>();
        for (int i = 0; i < 20; i++)
            delivered.Add(await producer.ProduceAsync("t", Message.FromStrings(null, "u" + i)).WaitAsync(Bound));
        Assert.All(delivered, d => Assert.Contains(d.Partition, new[] { 0, 2 }));
        Assert.All(delivered, d => Assert.True(d.Offset >= 120));

        // Explicitly to the offline partition: LEADER_NOT_AVAILABLE naming it, well before the 2-minute delivery timeout.
        var e = await Assert.ThrowsAsync<KafkaException>(() => producer.ProduceAsync(new TopicPartition("t", 1), Message.FromStrings(null, "x")).WaitAsync(Bound));
        Assert.Equal(ErrorCode.LeaderNotAvailable, e.Error);
        Assert.Equal(new TopicPartition("t", 1), e.TopicPartition);

        // A key hashing to the offline partition fails the same way (keys hash over all partitions, as Kafka); others go on.
        string keyFor1 = Enumerable.Range(0, 1000).Select(i => "k" + i).First(k => Partitioner.ForKey(System.Text.Encoding.UTF8.GetBytes(k), 3) == 1);
        string keyFor2 = Enumerable.Range(0, 1000).Select(i => "k" + i).First(k => Partitioner.ForKey(System.Text.Encoding.UTF8.GetBytes(k), 3) == 2);
        var toOffline = producer.ProduceAsync("t", Message.FromStrings(keyFor1, "a"));
        var toHealthy = await producer.ProduceAsync("t", Message.FromStrings(keyFor2, "b")).WaitAsync(Bound);
        Assert.Equal(2, toHealthy.Partition);
        var keyed = await Assert.ThrowsAsync<KafkaException>(() => toOffline.WaitAsync(Bound));
        Assert.Equal(ErrorCode.LeaderNotAvailable, keyed.Error);
        Assert.Equal(new TopicPartition("t", 1), keyed.TopicPartition);

        // And the producer keeps working for the healthy partitions afterwards.
        Assert.Equal(0, (await producer.ProduceAsync(new TopicPartition("t", 0), Message.FromStrings(null, "after")).WaitAsync(Bound)).Partition);
    }

    [Fact]
    public async Task Consumer_assigned_the_whole_topic_reads_every_record_of_the_healthy_partitions_while_one_is_offline()
    {
        var (data, broker) = await StartAsync();
        using var _ = data;
        await using var __ = broker;
        await using (var producer = new KafkaProducer(Options(broker), new ProducerOptions { Linger = TimeSpan.Zero }))
        {
            await producer.ProduceAsync(new TopicPartition("t", 0), Message.FromStrings(null, "p0")).WaitAsync(Bound);
            await producer.ProduceAsync(new TopicPartition("t", 2), Message.FromStrings(null, "p2")).WaitAsync(Bound);
        }
        await using var consumer = new KafkaConsumer(Options(broker), new ConsumerOptions { MaxWait = TimeSpan.FromMilliseconds(200), AutoOffsetReset = AutoOffsetReset.Earliest });
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartition("t", p)));

        using var cts = new CancellationTokenSource(Bound);
        var offsets = new Dictionary<int, List<long>> { [0] = [], [2] = [] };
        while (offsets.Values.Sum(o => o.Count) < 2 * 121)
        {
            var r = await consumer.ConsumeAsync(cts.Token); // an error for the offline partition would throw here and fail the test
            if (r.IsPartitionEof) continue;
            Assert.NotEqual(1, r.Partition);
            offsets[r.Partition].Add(r.Offset);
        }
        Assert.Equal(Enumerable.Range(0, 121).Select(i => (long)i), offsets[0]);
        Assert.Equal(Enumerable.Range(0, 121).Select(i => (long)i), offsets[2]);
    }
}
