using System.Diagnostics;
using Cairn.Client;
using Cairn.Offsets;
using Cairn.Protocol;
using Cairn.Protocol.Records;

namespace Cairn.Tests.Client;

public sealed class ProducerConsumerTests : ClientTestBase
{
    private KafkaConsumer ConsumerAt(string topic, int partition = 0, ConsumerOptions? options = null)
    {
        var consumer = Consumer(options);
        consumer.Assign([new TopicPartition(topic, partition)]);
        return consumer;
    }

    [Theory]
    [InlineData(CompressionCodec.None)]
    [InlineData(CompressionCodec.Gzip)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Lz4)]
    [InlineData(CompressionCodec.Zstd)]
    public async Task Round_trip_with_each_codec(CompressionCodec codec)
    {
        var topic = await CreateTopicAsync("codec-" + codec.ToString().ToLowerInvariant());
        var producer = Producer(new ProducerOptions { Compression = codec, Linger = TimeSpan.FromMilliseconds(20) });
        var sends = Enumerable.Range(0, 50).Select(i => producer.ProduceAsync(topic,
            Message.FromStrings("key-" + i, new string('x', i * 10) + i, [new RecordHeader("h", Bytes("v" + i))]))).ToList();
        var delivered = await Task.WhenAll(sends);
        // Calls made in order are delivered in order, even the ones that waited for the topic's metadata.
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), delivered.Select(d => d.Offset));

        var batches = await ReadBatchesAsync(topic);
        Assert.All(batches, b => Assert.Equal(codec, b.Header.Compression));
        Assert.All(batches, b => Assert.True(b.IsCrcValid()));

        var consumer = ConsumerAt(topic);
        await consumer.SeekAsync(new TopicPartition(topic, 0), Offset.Earliest);
        var records = await ConsumeAsync(consumer, 50);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(i, records[i].Offset);
            Assert.Equal("key-" + i, records[i].KeyAsString());
            Assert.Equal(new string('x', i * 10) + i, records[i].ValueAsString());
            Assert.Equal("h", records[i].Headers.Single().Key);
            Assert.Equal("v" + i, Text(records[i].Headers.Single().Value));
            Assert.Equal(TimestampType.CreateTime, records[i].TimestampType);
            Assert.Equal(delivered[i].Timestamp, records[i].Timestamp);
        }
    }

    [Fact]
    public async Task Null_and_empty_keys_values_and_header_values_stay_distinct()
    {
        var topic = await CreateTopicAsync("nulls");
        var producer = Producer();
        RecordHeader[] headers = [new("null", (byte[]?)null), new("empty", Array.Empty<byte>()), new("text", Bytes("x")), new("text", Bytes("dup"))];
        await producer.ProduceAsync(topic, new Message());                                        // null key, null value
        await producer.ProduceAsync(topic, Message.FromBytes([], []));                            // empty key, empty value
        await producer.ProduceAsync(topic, Message.FromBytes(null, Bytes("v")));                  // null key
        await producer.ProduceAsync(topic, Message.FromStrings("k", null, headers));              // null value, headers
        await producer.ProduceAsync(topic, new Message { Key = ReadOnlyMemory<byte>.Empty });     // empty key, null value

        var consumer = ConsumerAt(topic);
        var r = await ConsumeAsync(consumer, 5);
        Assert.Null(r[0].Key); Assert.Null(r[0].Value);
        Assert.True(r[1].Key is { Length: 0 }); Assert.True(r[1].Value is { Length: 0 });
        Assert.Null(r[2].Key); Assert.Equal("v", r[2].ValueAsString());
        Assert.Equal("k", r[3].KeyAsString()); Assert.Null(r[3].Value);
        Assert.Equal(["null", "empty", "text", "text"], r[3].Headers.Select(h => h.Key));
        Assert.Null(r[3].Headers[0].Value);
        Assert.True(r[3].Headers[1].Value is { Length: 0 });
        Assert.Equal("x", Text(r[3].Headers[2].Value));
        Assert.Equal("dup", Text(r[3].Headers[3].Value));
        Assert.True(r[4].Key is { Length: 0 }); Assert.Null(r[4].Value);
        Assert.Empty(r[0].Headers);

        // And on the wire: -1 lengths for nulls.
        var stored = (await ReadBatchesAsync(topic)).SelectMany(b => RecordBatch.ReadRecords(b.Bytes)).ToList();
        Assert.Null(stored[0].Key);
        Assert.NotNull(stored[1].Key);
        Assert.Null(stored[3].Headers[0].Value);
        Assert.NotNull(stored[3].Headers[1].Value);
    }

    [Fact]
    public async Task Many_small_messages_travel_in_few_batches()
    {
        var topic = await CreateTopicAsync("batching");
        var producer = Producer(new ProducerOptions { Linger = TimeSpan.FromMilliseconds(100) });
        await producer.ProduceAsync(topic, Message.FromStrings("warm", "up")); // metadata is cached from here on
        var sends = Enumerable.Range(0, 1000).Select(i => producer.ProduceAsync(topic, Message.FromStrings(null, "m" + i))).ToList();
        await Task.WhenAll(sends);
        var batches = await ReadBatchesAsync(topic);
        Assert.Equal(1001, batches.Sum(b => b.Header.RecordCount));
        Assert.InRange(batches.Count, 2, 4); // the warm-up, then (nearly) everything in one batch
        Assert.Contains(batches, b => b.Header.RecordCount >= 500);
    }

    [Fact]
    public async Task Batches_are_cut_at_the_batch_size()
    {
        var topic = await CreateTopicAsync("batch-size");
        var producer = Producer(new ProducerOptions { BatchSizeBytes = 2000, Linger = TimeSpan.FromSeconds(30) });
        var warmUp = producer.ProduceAsync(topic, Message.FromStrings("warm", "up"));
        await producer.FlushAsync(); // metadata is cached from here on
        await warmUp;
        var sends = Enumerable.Range(0, 100).Select(i => producer.ProduceAsync(topic, Message.FromStrings(null, new string('v', 100)))).ToList();
        // Full batches go at once, without waiting for the (long) linger; only the last, partial one waits.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Task.WhenAll(sends.Take(80)).WaitAsync(cts.Token);
        await producer.FlushAsync(cts.Token);
        var batches = await ReadBatchesAsync(topic);
        Assert.Equal(101, batches.Sum(b => b.Header.RecordCount));
        Assert.All(batches, b => Assert.True(b.Header.TotalSize <= 2000 + 200, $"batch of {b.Header.TotalSize} bytes"));
        Assert.True(batches.Count >= 6, $"{batches.Count} batches");
    }

    [Fact]
    public async Task Linger_holds_a_lone_record_and_flush_sends_it_at_once()
    {
        var topic = await CreateTopicAsync("linger");
        var lingering = Producer(new ProducerOptions { Linger = TimeSpan.FromMilliseconds(400) });
        await lingering.ProduceAsync(topic, Message.FromStrings(null, "warm-up"));
        var sw = Stopwatch.StartNew();
        await lingering.ProduceAsync(topic, Message.FromStrings(null, "late"));
        Assert.InRange(sw.ElapsedMilliseconds, 350, 30_000); // held for the linger, not forever

        // Wall-clock upper bounds only tell "sent without waiting" from "held for a long linger or for ever": they
        // are generous, since a loaded CI box can stall any step for seconds (a 300 ms bound here was flaky).

        var eager = Producer(new ProducerOptions { Linger = TimeSpan.Zero });
        await eager.ProduceAsync(topic, Message.FromStrings(null, "warm-up"));
        sw.Restart();
        await eager.ProduceAsync(topic, Message.FromStrings(null, "now"));
        Assert.InRange(sw.ElapsedMilliseconds, 0, 30_000);

        var patient = Producer(new ProducerOptions { Linger = TimeSpan.FromMinutes(5) });
        var pending = patient.ProduceAsync(topic, Message.FromStrings(null, "flushed"));
        Assert.False(pending.IsCompleted); // held by the linger until the flush
        sw.Restart();
        await patient.FlushAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.InRange(sw.ElapsedMilliseconds, 0, 60_000);
    }

    [Theory]
    [InlineData(Acks.None)]
    [InlineData(Acks.Leader)]
    [InlineData(Acks.All)]
    public async Task Acks_levels(Acks acks)
    {
        var topic = await CreateTopicAsync("acks-" + acks.ToString().ToLowerInvariant());
        var producer = Producer(new ProducerOptions { Acks = acks, Linger = TimeSpan.FromMilliseconds(5) });
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => producer.ProduceAsync(topic, Message.FromStrings("k", "v" + i))));
        if (acks == Acks.None) Assert.All(results, r => Assert.Equal(-1, r.Offset));
        else Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), results.Select(r => r.Offset));
        var consumer = ConsumerAt(topic);
        var records = await ConsumeAsync(consumer, 20);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => "v" + i), records.Select(r => r.ValueAsString()));
    }

    [Fact]
    public async Task Idempotent_producer_numbers_its_batches()
    {
        var topic = await CreateTopicAsync("idempotent", partitions: 2);
        var producer = Producer(new ProducerOptions { Idempotent = true, BatchSizeBytes = 500, Linger = TimeSpan.FromMilliseconds(10) });
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            producer.ProduceAsync(new TopicPartition(topic, i % 2), Message.FromStrings("k" + i, "value-" + i))));
        var (producerId, epoch) = producer.ProducerIdentity;
        Assert.True(producerId >= 0);
        Assert.Equal(0, epoch);
        for (int p = 0; p < 2; p++)
        {
            Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), results.Where(r => r.Partition == p).Select(r => r.Offset).Order());
            var batches = await ReadBatchesAsync(topic, p);
            Assert.True(batches.Count > 3);
            int expectedSequence = 0;
            foreach (var b in batches)
            {
                Assert.Equal(producerId, b.Header.ProducerId);
                Assert.Equal(epoch, b.Header.ProducerEpoch);
                Assert.Equal(expectedSequence, b.Header.BaseSequence);
                expectedSequence += b.Header.RecordCount;
            }
        }
    }

    [Fact]
    public void Idempotence_requires_acks_all()
    {
        Assert.Throws<ArgumentException>(() => new KafkaProducer(ClientOptions, new ProducerOptions { Idempotent = true, Acks = Acks.Leader }));
    }

    [Fact]
    public async Task Keyed_records_go_to_the_murmur2_partition_and_null_keys_stick_to_one()
    {
        var topic = await CreateTopicAsync("keyed", partitions: 6);
        var producer = Producer(new ProducerOptions { Linger = TimeSpan.FromMilliseconds(200) });
        var keyed = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => producer.ProduceAsync(topic, Message.FromStrings("key-" + i, "v"))));
        for (int i = 0; i < 60; i++) Assert.Equal(Partitioner.ForKey(Bytes("key-" + i), 6), keyed[i].Partition);
        Assert.True(keyed.Select(r => r.Partition).Distinct().Count() > 3);

        var unkeyed = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => producer.ProduceAsync(topic, Message.FromStrings(null, "v" + i))));
        Assert.Single(unkeyed.Select(r => r.Partition).Distinct()); // one batch, one partition
    }

    [Fact]
    public void Murmur2_matches_the_java_client()
    {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        Assert.Equal(-973932308, Partitioner.Murmur2(Bytes("21")));
        Assert.Equal(-790332482, Partitioner.Murmur2(Bytes("foobar")));
        Assert.Equal(-985981536, Partitioner.Murmur2(Bytes("a-little-bit-long-string")));
        Assert.Equal(-1486304829, Partitioner.Murmur2(Bytes("a-little-bit-longer-string")));
        Assert.Equal(-58897971, Partitioner.Murmur2(Bytes("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")));
        Assert.Equal(479470107, Partitioner.Murmur2(Bytes("abc")));
    }

    [Fact]
    public async Task Explicit_partitions_and_timestamps()
    {
        var topic = await CreateTopicAsync("explicit", partitions: 3);
        var producer = Producer();
        var when = new DateTimeOffset(2024, 5, 6, 7, 8, 9, 123, TimeSpan.Zero);
        var result = await producer.ProduceAsync(new TopicPartition(topic, 2), Message.FromStrings("k", "v", timestamp: when));
        Assert.Equal(2, result.Partition);
        Assert.Equal(0, result.Offset);
        Assert.Equal(when, result.Timestamp);
        Assert.Equal(TimestampType.CreateTime, result.TimestampType);

        var e = await Assert.ThrowsAsync<KafkaException>(() => producer.ProduceAsync(new TopicPartition(topic, 7), Message.FromStrings("k", "v")));
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, e.Error);

        var consumer = ConsumerAt(topic, 2);
        var record = (await ConsumeAsync(consumer, 1)).Single();
        Assert.Equal(when, record.Timestamp);
    }

    [Fact]
    public async Task Log_append_time_topics_report_the_broker_time()
    {
        var topic = await CreateTopicAsync("append-time", configs: new Dictionary<string, string?> { ["message.timestamp.type"] = "LogAppendTime" });
        var producer = Producer();
        var old = DateTimeOffset.UnixEpoch.AddYears(10);
        var before = DateTimeOffset.UtcNow.AddSeconds(-5);
        var result = await producer.ProduceAsync(topic, Message.FromStrings("k", "v", timestamp: old));
        Assert.Equal(TimestampType.LogAppendTime, result.TimestampType);
        Assert.True(result.Timestamp > before);
        var record = (await ConsumeAsync(ConsumerAt(topic), 1)).Single();
        Assert.Equal(TimestampType.LogAppendTime, record.TimestampType);
        Assert.Equal(result.Timestamp, record.Timestamp);
    }

    [Fact]
    public async Task Producer_dispose_flushes()
    {
        var topic = await CreateTopicAsync("dispose-flush");
        var producer = new KafkaProducer(ClientOptions, new ProducerOptions { Linger = TimeSpan.FromMinutes(10) });
        var pending = Enumerable.Range(0, 10).Select(i => producer.ProduceAsync(topic, Message.FromStrings(null, "v" + i))).ToList();
        await producer.DisposeAsync();
        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => producer.ProduceAsync(topic, new Message()));
        Assert.Equal(10, (await ReadBatchesAsync(topic)).Sum(b => b.Header.RecordCount));
    }

    [Fact]
    public async Task Metadata_older_than_the_max_age_is_refreshed()
    {
        var topic = await CreateTopicAsync("aging", 1);
        var options = ClientOptions with { MetadataMaxAge = TimeSpan.FromMilliseconds(200) };
        await using var producer = new KafkaProducer(options, new ProducerOptions { Linger = TimeSpan.Zero });
        Assert.Equal(0, (await producer.ProduceAsync(topic, Message.FromStrings("user-1", "v"))).Partition);
        await Admin.CreatePartitionsAsync(topic, 8);
        await Task.Delay(300);
        await producer.ProduceAsync(topic, Message.FromStrings(null, "refresh")); // sending it notices the stale metadata
        var deadline = DateTime.UtcNow.AddSeconds(10);
        DeliveryResult result;
        do result = await producer.ProduceAsync(topic, Message.FromStrings("user-1", "v"));
        while (result.Partition == 0 && DateTime.UtcNow < deadline && await Task.Delay(20).ContinueWith(_ => true));
        Assert.Equal(Partitioner.ForKey(Bytes("user-1"), 8), result.Partition);
    }

    [Fact]
    public async Task A_full_buffer_makes_producers_wait_in_order()
    {
        var topic = await CreateTopicAsync("backpressure");
        var producer = Producer(new ProducerOptions { BufferMemoryBytes = 8 * 1024, BatchSizeBytes = 4 * 1024, Linger = TimeSpan.FromMilliseconds(30) });
        await producer.ProduceAsync(topic, Message.FromStrings(null, "warm-up"));
        var sends = Enumerable.Range(0, 200).Select(i => producer.ProduceAsync(topic, Message.FromStrings(null, i + new string('b', 1000)))).ToList();
        var results = await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), results.Select(r => r.Offset));
        Assert.All(await ReadBatchesAsync(topic), b => Assert.True(b.Header.TotalSize < 8 * 1024));
    }

    [Fact]
    public async Task Cancelling_a_produce_that_waits_for_buffer_space_drops_it()
    {
        var topic = await CreateTopicAsync("cancelled");
        var producer = Producer(new ProducerOptions { BufferMemoryBytes = 100, Linger = TimeSpan.FromMinutes(5) });
        var filler = producer.ProduceAsync(topic, Message.FromStrings(null, new string('f', 200))); // fills the buffer, lingers
        using var cts = new CancellationTokenSource();
        var waiting = producer.ProduceAsync(topic, Message.FromStrings(null, "dropped"), cts.Token);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await producer.FlushAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        await filler;
        var kept = producer.ProduceAsync(topic, Message.FromStrings(null, "kept"));
        await producer.FlushAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        await kept;
        var values = (await ReadBatchesAsync(topic)).SelectMany(b => RecordBatch.ReadRecords(b.Bytes)).Select(r => Text(r.Value)!.Substring(0, 4)).ToList();
        Assert.Equal(["ffff", "kept"], values);
    }

    // ------------------------------------------------------------------ consumer

    private async Task<(string Topic, DateTimeOffset T0)> TenRecordsAsync(string name)
    {
        var topic = await CreateTopicAsync(name);
        // A linger far longer than the ten calls take even on a loaded machine, ended by the flush: one batch.
        var producer = Producer(new ProducerOptions { Linger = TimeSpan.FromMinutes(5) });
        var t0 = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var sends = Enumerable.Range(0, 10).Select(i => producer.ProduceAsync(topic, Message.FromStrings("k" + i, "v" + i, timestamp: t0.AddSeconds(i)))).ToList();
        await producer.FlushAsync();
        await Task.WhenAll(sends);
        Assert.Single(await ReadBatchesAsync(topic)); // one batch: seeking into it must skip its first records
        return (topic, t0);
    }

    [Fact]
    public async Task Seek_to_earliest_latest_exact_and_timestamp()
    {
        var (topic, t0) = await TenRecordsAsync("seek");
        var tp = new TopicPartition(topic, 0);
        var consumer = ConsumerAt(topic);
        Assert.Null(consumer.Position(tp));

        await consumer.SeekAsync(tp, Offset.Sequence(5));
        Assert.Equal(5, consumer.Position(tp));
        Assert.Equal([5L, 6, 7], (await ConsumeAsync(consumer, 3)).Select(r => r.Offset));
        Assert.Equal(8, consumer.Position(tp));

        await consumer.SeekAsync(tp, Offset.Earliest);
        Assert.Equal(0, consumer.Position(tp));
        Assert.Equal("v0", (await ConsumeAsync(consumer, 1))[0].ValueAsString());

        await consumer.SeekAsync(tp, Offset.Timestamp(t0.AddSeconds(3.5)));
        Assert.Equal(4, consumer.Position(tp));
        Assert.Equal("v4", (await ConsumeAsync(consumer, 1))[0].ValueAsString());

        await consumer.SeekAsync(tp, Offset.Timestamp(t0.AddDays(1)));
        Assert.Equal(10, consumer.Position(tp)); // after the last record: the end of the log

        await consumer.SeekAsync(tp, Offset.Latest);
        Assert.Equal(10, consumer.Position(tp));
        Assert.Null(await consumer.ConsumeAsync(TimeSpan.FromMilliseconds(300)));

        await Assert.ThrowsAsync<ArgumentException>(() => consumer.SeekAsync(tp, Offset.Custom("x")));
        await Assert.ThrowsAsync<InvalidOperationException>(() => consumer.SeekAsync(new TopicPartition(topic, 9), Offset.Earliest));
    }

    [Fact]
    public async Task Long_poll_returns_as_soon_as_data_arrives()
    {
        var topic = await CreateTopicAsync("long-poll");
        var tp = new TopicPartition(topic, 0);
        // A long max wait, so "woken by the append" and "returned at max wait" stay apart on a loaded machine.
        var consumer = ConsumerAt(topic, options: new ConsumerOptions { MaxWait = TimeSpan.FromSeconds(60) });
        await consumer.SeekAsync(tp, Offset.Latest);
        var consuming = consumer.ConsumeAsync(new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
        await Task.Delay(300);
        Assert.False(consuming.IsCompleted);
        var producer = Producer();
        var sw = Stopwatch.StartNew();
        await producer.ProduceAsync(topic, Message.FromStrings("k", "wake"));
        var record = await consuming;
        Assert.Equal("wake", record.ValueAsString());
        Assert.InRange(sw.ElapsedMilliseconds, 0, 30_000);
    }

    [Fact]
    public async Task End_of_partition_is_reported_once_each_time_the_end_is_reached()
    {
        var topic = await CreateTopicAsync("eof", partitions: 2);
        var producer = Producer();
        for (int i = 0; i < 3; i++) await producer.ProduceAsync(new TopicPartition(topic, 0), Message.FromStrings("k", "v" + i));
        var consumer = Consumer(new ConsumerOptions { EnablePartitionEof = true, AutoOffsetReset = AutoOffsetReset.Earliest, MaxWait = TimeSpan.FromMilliseconds(100) });
        consumer.Assign([new TopicPartition(topic, 0), new TopicPartition(topic, 1)]);
        var seen = await ConsumeAsync(consumer, 5, skipEof: false);
        var p0 = seen.Where(r => r.Partition == 0).ToList();
        Assert.Equal(["v0", "v1", "v2", null], p0.Select(r => r.ValueAsString()));
        Assert.True(p0[3].IsPartitionEof);
        Assert.Equal(3, p0[3].Offset);
        var p1 = seen.Single(r => r.Partition == 1);
        Assert.True(p1.IsPartitionEof);
        Assert.Equal(0, p1.Offset);
        Assert.Null(await consumer.ConsumeAsync(TimeSpan.FromMilliseconds(400))); // no repeats

        await producer.ProduceAsync(new TopicPartition(topic, 1), Message.FromStrings("k", "late"));
        var more = await ConsumeAsync(consumer, 2, skipEof: false);
        Assert.Equal("late", more[0].ValueAsString());
        Assert.True(more[1].IsPartitionEof);
        Assert.Equal(1, more[1].Offset);
    }

    [Fact]
    public async Task Lag_is_the_log_end_minus_the_position()
    {
        var (topic, _) = await TenRecordsAsync("lag");
        var tp = new TopicPartition(topic, 0);
        var consumer = ConsumerAt(topic);
        await Assert.ThrowsAsync<InvalidOperationException>(() => consumer.GetLagAsync(tp));
        await consumer.SeekAsync(tp, Offset.Earliest);
        Assert.Equal(10, await consumer.GetLagAsync(tp));
        await ConsumeAsync(consumer, 4);
        Assert.Equal(6, await consumer.GetLagAsync(tp));
        Assert.Equal(6, consumer.GetCachedLag(tp));
        Assert.Equal(new WatermarkOffsets(0, 10), consumer.GetWatermarkOffsets(tp));
        Assert.Equal(new WatermarkOffsets(0, 10), await consumer.QueryWatermarkOffsetsAsync(tp));
        await ConsumeAsync(consumer, 6);
        Assert.Equal(0, await consumer.GetLagAsync(tp));
    }

    [Fact]
    public async Task Out_of_range_positions_fail_or_reset_per_policy()
    {
        var (topic, _) = await TenRecordsAsync("out-of-range");
        var tp = new TopicPartition(topic, 0);

        var strict = ConsumerAt(topic, options: new ConsumerOptions { AutoOffsetReset = AutoOffsetReset.None });
        var unpositioned = await Assert.ThrowsAsync<InvalidOperationException>(() => strict.ConsumeAsync(new CancellationTokenSource(10_000).Token));
        Assert.Contains("no position", unpositioned.Message);
        await strict.SeekAsync(tp, Offset.Sequence(100));
        var e = await Assert.ThrowsAsync<KafkaException>(() => strict.ConsumeAsync(new CancellationTokenSource(10_000).Token));
        Assert.Equal(ErrorCode.OffsetOutOfRange, e.Error);
        Assert.Equal(tp, e.TopicPartition);

        var resetting = ConsumerAt(topic, options: new ConsumerOptions { AutoOffsetReset = AutoOffsetReset.Earliest });
        await resetting.SeekAsync(tp, Offset.Sequence(100));
        Assert.Equal(0, (await ConsumeAsync(resetting, 1))[0].Offset);

        var latest = ConsumerAt(topic, options: new ConsumerOptions { AutoOffsetReset = AutoOffsetReset.Latest, MaxWait = TimeSpan.FromMilliseconds(100) });
        Assert.Null(await latest.ConsumeAsync(TimeSpan.FromMilliseconds(500)));
        Assert.Equal(10, latest.Position(tp));
    }

    [Fact]
    public async Task Partial_trailing_batches_are_fetched_again_whole()
    {
        var topic = await CreateTopicAsync("partial");
        var producer = Producer(new ProducerOptions { Linger = TimeSpan.Zero });
        for (int i = 0; i < 30; i++) await producer.ProduceAsync(topic, Message.FromStrings("k" + i, new string('p', 150) + i));
        var consumer = ConsumerAt(topic, options: new ConsumerOptions { MaxPartitionBytes = 700, AutoOffsetReset = AutoOffsetReset.Earliest, MaxWait = TimeSpan.FromMilliseconds(50) });
        var records = await ConsumeAsync(consumer, 30);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(new string('p', 150) + 29, records[29].ValueAsString());
    }

    [Fact]
    public async Task Several_topics_and_partitions_at_once()
    {
        var a = await CreateTopicAsync("multi-a", partitions: 3);
        var b = await CreateTopicAsync("multi-b", partitions: 2);
        var producer = Producer();
        var expected = new List<(TopicPartition, string)>();
        foreach (var tp in new[] { new TopicPartition(a, 0), new TopicPartition(a, 1), new TopicPartition(a, 2), new TopicPartition(b, 0), new TopicPartition(b, 1) })
            for (int i = 0; i < 5; i++)
            {
                await producer.ProduceAsync(tp, Message.FromStrings(null, $"{tp}-{i}"));
                expected.Add((tp, $"{tp}-{i}"));
            }
        var consumer = Consumer();
        consumer.Assign(expected.Select(e => e.Item1).Distinct());
        Assert.Equal(5, consumer.Assignment.Count);
        var records = await ConsumeAsync(consumer, 25);
        Assert.Equal(expected.OrderBy(e => e.Item2), records.Select(r => (r.TopicPartition, r.ValueAsString()!)).OrderBy(e => e.Item2));
        foreach (var g in records.GroupBy(r => r.TopicPartition)) Assert.Equal(Enumerable.Range(0, 5).Select(i => (long)i), g.Select(r => r.Offset));

        consumer.Assign([new TopicPartition(a, 0)]);
        Assert.Equal(5, consumer.Position(new TopicPartition(a, 0))); // kept across reassignment
    }

    [Fact]
    public async Task Consume_all_streams_and_cancels()
    {
        var (topic, _) = await TenRecordsAsync("stream");
        var consumer = ConsumerAt(topic);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var got = new List<long>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var r in consumer.ConsumeAllAsync(cts.Token))
            {
                got.Add(r.Offset);
                if (got.Count == 10) cts.CancelAfter(200);
            }
        });
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), got);
    }

    [Fact]
    public async Task A_consume_waiting_with_nothing_assigned_picks_up_a_new_assignment()
    {
        var (topic, _) = await TenRecordsAsync("late-assign");
        var consumer = Consumer();
        var waiting = consumer.ConsumeAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        consumer.Assign([new TopicPartition(topic, 0)]);
        Assert.Equal(0, (await waiting).Offset);
        Assert.Null(await Consumer().ConsumeAsync(TimeSpan.FromMilliseconds(100))); // nothing assigned: times out
    }

    [Fact]
    public async Task Disposing_the_consumer_ends_a_waiting_consume()
    {
        var topic = await CreateTopicAsync("disposed");
        var consumer = new KafkaConsumer(ClientOptions, new ConsumerOptions { MaxWait = TimeSpan.FromMilliseconds(100), AutoOffsetReset = AutoOffsetReset.Latest });
        consumer.Assign([new TopicPartition(topic, 0)]);
        var waiting = consumer.ConsumeAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
        await Task.Delay(300);
        await consumer.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => consumer.ConsumeAsync());
    }

    [Fact]
    public async Task Consume_with_a_timeout_returns_null_and_keeps_the_fetch()
    {
        var topic = await CreateTopicAsync("timeout");
        var consumer = ConsumerAt(topic, options: new ConsumerOptions { MaxWait = TimeSpan.FromSeconds(5), AutoOffsetReset = AutoOffsetReset.Earliest });
        Assert.Null(await consumer.ConsumeAsync(TimeSpan.FromMilliseconds(200)));
        await Producer().ProduceAsync(topic, Message.FromStrings("k", "after"));
        var record = await consumer.ConsumeAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("after", record!.ValueAsString());
    }
}
