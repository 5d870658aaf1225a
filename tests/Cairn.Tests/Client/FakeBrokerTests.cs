using System.Diagnostics;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Client;

/// <summary>Client behaviour against a scripted broker: version fallbacks, silence, and APIs Cairn does not serve.</summary>
public sealed class FakeBrokerTests
{
    private static KafkaClientOptions Options(FakeBroker fake, int timeoutMs = 5000) => new()
    {
        BootstrapServers = $"127.0.0.1:{fake.Port}", RequestTimeout = TimeSpan.FromMilliseconds(timeoutMs), Retries = 1, RetryBackoff = TimeSpan.FromMilliseconds(10),
    };

    private static DescribeConfigsResponse TopicConfigs(DescribeConfigsRequest r) => new()
    {
        Results = r.Resources.Select(res => new DescribeConfigsResponse.DescribeConfigsResult
        {
            ResourceType = res.ResourceType, ResourceName = res.ResourceName, ErrorMessage = null,
            Configs =
            [
                new() { Name = "retention.ms", Value = "1000", ConfigSource = 1 },
                new() { Name = "cleanup.policy", Value = "delete", ConfigSource = 1 },
                new() { Name = "segment.bytes", Value = "1073741824", ConfigSource = 5, IsDefault = true },
                new() { Name = "password", Value = null, ConfigSource = 1, IsSensitive = true },
            ],
        }).ToList(),
    };

    [Fact]
    public async Task Alter_configs_prefers_incremental()
    {
        await using var fake = new FakeBroker();
        fake.On<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(new VersionRange(0, 1), (r, _) => new()
        {
            Responses = r.Resources.Select(res => new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
            {
                ResourceType = res.ResourceType, ResourceName = res.ResourceName, ErrorMessage = null,
                ErrorCode = res.ResourceName == "locked" ? (short)ErrorCode.PolicyViolation : (short)0,
            }).ToList(),
        });
        await using var admin = new KafkaAdminClient(Options(fake));
        await admin.AlterConfigsAsync(ConfigResource.Topic("t"), [ConfigAlteration.Set("retention.ms", "5"), ConfigAlteration.Delete("cleanup.policy"), ConfigAlteration.Append("x", "a")]);
        var (_, version, request) = fake.Received.Single(r => r.Key == ApiKey.IncrementalAlterConfigs);
        Assert.Equal(1, version);
        var configs = ((IncrementalAlterConfigsRequest)request).Resources.Single().Configs;
        Assert.Equal([("retention.ms", (sbyte)0, "5"), ("cleanup.policy", (sbyte)1, null), ("x", (sbyte)2, "a")], configs.Select(c => (c.Name, c.ConfigOperation, c.Value)));

        var e = await Assert.ThrowsAsync<KafkaOperationException>(() => admin.AlterConfigsAsync(ConfigResource.Topic("locked"), [ConfigAlteration.Set("a", "b")]));
        Assert.Equal(ErrorCode.PolicyViolation, e.Failures["Topic:locked"].Error);
    }

    [Fact]
    public async Task Alter_configs_falls_back_to_replacing_all_overrides()
    {
        await using var fake = new FakeBroker();
        fake.On<DescribeConfigsRequest, DescribeConfigsResponse>(new VersionRange(0, 4), (r, _) => TopicConfigs(r));
        fake.On<AlterConfigsRequest, AlterConfigsResponse>(new VersionRange(0, 2), (r, _) => new()
        {
            Responses = r.Resources.Select(res => new AlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = res.ResourceType, ResourceName = res.ResourceName, ErrorMessage = null }).ToList(),
        });
        await using var admin = new KafkaAdminClient(Options(fake));
        await admin.AlterConfigsAsync(ConfigResource.Topic("t"),
            [ConfigAlteration.Set("max.message.bytes", "100"), ConfigAlteration.Delete("retention.ms"), ConfigAlteration.Append("cleanup.policy", "compact")]);
        var request = (AlterConfigsRequest)fake.Received.Single(r => r.Key == ApiKey.AlterConfigs).Request;
        var sent = request.Resources.Single().Configs.ToDictionary(c => c.Name, c => c.Value);
        // The dynamic overrides are kept (not the defaults, not sensitive values it cannot read back), with the changes applied.
        Assert.Equal(new Dictionary<string, string?> { ["cleanup.policy"] = "delete,compact", ["max.message.bytes"] = "100" }, sent);
    }

    [Fact]
    public async Task A_request_that_gets_no_answer_times_out_and_later_requests_use_a_new_connection()
    {
        await using var fake = new FakeBroker();
        int calls = 0;
        fake.On<ListGroupsRequest, ListGroupsResponse>(new VersionRange(0, 4), (_, _) => Interlocked.Increment(ref calls) == 1 ? null : new ListGroupsResponse());
        // The timeout also bounds connecting and the metadata lookup: 3 s, so a loaded box does not time those out instead.
        await using var admin = new KafkaAdminClient(Options(fake, timeoutMs: 3000) with { Retries = 0 });
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<KafkaException>(() => admin.ListGroupsAsync());
        Assert.Equal(ErrorCode.RequestTimedOut, e.Error);
        Assert.True(e.IsRetriable);
        Assert.Contains("ListGroups", e.Message);
        Assert.InRange(sw.ElapsedMilliseconds, 2950, 30_000);
        Assert.Empty(await admin.ListGroupsAsync());
        Assert.Equal(2, fake.Received.Count(r => r.Key == ApiKey.ApiVersions)); // reconnected
    }

    [Fact]
    public async Task ApiVersions_unsupported_version_answers_are_understood()
    {
        // This fake knows ApiVersions up to v3 and answers v4 with a v0 body and UNSUPPORTED_VERSION.
        await using var fake = new FakeBroker();
        await using var admin = new KafkaAdminClient(Options(fake));
        var cluster = await admin.DescribeClusterAsync();
        Assert.Equal("fake", cluster.ClusterId);
        Assert.Equal(4, fake.Received.First().Version);
        var metadata = fake.Received.First(r => r.Key == ApiKey.Metadata);
        Assert.Equal(12, metadata.Version);
    }

    [Fact]
    public async Task Apis_the_broker_lacks_fail_with_unsupported_version()
    {
        await using var fake = new FakeBroker();
        await using var admin = new KafkaAdminClient(Options(fake));
        var e = await Assert.ThrowsAsync<KafkaException>(() => admin.ListGroupsAsync());
        Assert.Equal(ErrorCode.UnsupportedVersion, e.Error);
        Assert.Contains("ListGroups", e.Message);
        Assert.False(e.IsRetriable);
    }

    private static MetadataResponse OneTopic(FakeBroker fake, string topic) => new()
    {
        Brokers = [new() { NodeId = 1, Host = "127.0.0.1", Port = fake.Port }], ControllerId = 1, ClusterId = "fake",
        Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, LeaderId = 1, ReplicaNodes = [1], IsrNodes = [1] }] }],
    };

    private static byte[] Batch(long baseOffset, long producerId, bool transactional, params string[] values)
    {
        using var builder = new Cairn.Protocol.Records.RecordBatchBuilder { BaseOffset = baseOffset, ProducerId = producerId, ProducerEpoch = 0, BaseSequence = 0, IsTransactional = transactional };
        foreach (var v in values) builder.Append(1_700_000_000_000, null, System.Text.Encoding.UTF8.GetBytes(v));
        return builder.Build();
    }

    private static byte[] Marker(long offset, long producerId, bool commit)
    {
        using var builder = new Cairn.Protocol.Records.RecordBatchBuilder { BaseOffset = offset, ProducerId = producerId, ProducerEpoch = 0, IsTransactional = true, IsControl = true };
        builder.Append(1_700_000_000_000, new byte[] { 0, 0, 0, commit ? (byte)1 : (byte)0 }, new byte[] { 0, 0, 0, 0, 0, 0 });
        return builder.Build();
    }

    [Theory]
    [InlineData(IsolationLevel.ReadCommitted)]
    [InlineData(IsolationLevel.ReadUncommitted)]
    public async Task Read_committed_drops_aborted_transactions_and_every_consumer_drops_control_batches(IsolationLevel isolation)
    {
        // offsets 0-1 committed by producer 10, 2-3 aborted by producer 11, 4 abort marker, 5 commit marker, 6 plain.
        byte[] log = [.. Batch(0, 10, true, "c0", "c1"), .. Batch(2, 11, true, "a2", "a3"), .. Marker(4, 11, false), .. Marker(5, 10, true), .. Batch(6, -1, false, "n6")];
        await using var fake = new FakeBroker();
        fake.On<MetadataRequest, MetadataResponse>(new VersionRange(0, 9), (_, _) => OneTopic(fake, "tx"));
        sbyte requested = -1;
        fake.On<FetchRequest, FetchResponse>(new VersionRange(4, 12), (r, v) =>
        {
            requested = r.IsolationLevel;
            long offset = r.Topics[0].Partitions[0].FetchOffset;
            if (offset > 0) Thread.Sleep(Math.Min(r.MaxWaitMs, 50));
            return new FetchResponse
            {
                Responses = [new() { Topic = "tx", Partitions = [new()
                {
                    PartitionIndex = 0, HighWatermark = 7, LastStableOffset = 7, LogStartOffset = 0,
                    AbortedTransactions = [new() { ProducerId = 11, FirstOffset = 2 }],
                    Records = new Cairn.Protocol.Records.MemoryRecords(offset == 0 ? log : []),
                }] }],
            };
        });
        await using var consumer = new KafkaConsumer(Options(fake), new ConsumerOptions { IsolationLevel = isolation, EnablePartitionEof = true, MaxWait = TimeSpan.FromMilliseconds(50) });
        var tp = new TopicPartition("tx", 0);
        consumer.Assign([tp]);
        await consumer.SeekAsync(tp, Cairn.Offsets.Offset.Sequence(0));
        var values = new List<string?>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var r = await consumer.ConsumeAsync(cts.Token);
            if (r.IsPartitionEof) { Assert.Equal(7, r.Offset); break; }
            values.Add(r.ValueAsString());
        }
        Assert.Equal((sbyte)isolation, requested);
        Assert.Equal(isolation == IsolationLevel.ReadCommitted ? ["c0", "c1", "n6"] : ["c0", "c1", "a2", "a3", "n6"], values);
        Assert.Equal(7, consumer.Position(tp));
    }

    [Fact]
    public async Task An_idempotent_producer_whose_sequence_the_broker_rejects_bumps_its_epoch_and_resends()
    {
        await using var fake = new FakeBroker();
        fake.On<MetadataRequest, MetadataResponse>(new VersionRange(0, 12), (_, _) => OneTopic(fake, "seq"));
        fake.On<InitProducerIdRequest, InitProducerIdResponse>(new VersionRange(0, 4), (r, _) => new()
        {
            ProducerId = 7, ProducerEpoch = r.ProducerId == 7 ? (short)(r.ProducerEpoch + 1) : (short)0,
        });
        var batches = new List<Cairn.Protocol.Records.RecordBatchHeader>();
        long next = 0;
        fake.On<ProduceRequest, ProduceResponse>(new VersionRange(3, 9), (r, _) =>
        {
            var bytes = ((Cairn.Protocol.Records.MemoryRecords)r.TopicData[0].PartitionData[0].Records!).Bytes;
            var header = Cairn.Protocol.Records.RecordBatch.ReadHeader(bytes.Span);
            lock (batches) batches.Add(header);
            // The first batch is refused as if the broker had lost the producer's state.
            bool refuse = batches.Count == 1;
            long offset = refuse ? -1 : next;
            if (!refuse) next += header.RecordCount;
            return new ProduceResponse
            {
                Responses = [new() { Name = "seq", PartitionResponses = [new()
                {
                    Index = 0, BaseOffset = offset, ErrorCode = refuse ? (short)Cairn.Protocol.ErrorCode.OutOfOrderSequenceNumber : (short)0,
                }] }],
            };
        });
        await using var producer = new KafkaProducer(Options(fake), new ProducerOptions { Idempotent = true, Linger = TimeSpan.Zero });
        var first = await producer.ProduceAsync("seq", Message.FromStrings("k", "one")).WaitAsync(TimeSpan.FromSeconds(10));
        var second = await producer.ProduceAsync("seq", Message.FromStrings("k", "two")).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((0L, 1L), (first.Offset, second.Offset));
        Assert.Equal((7L, (short)1), producer.ProducerIdentity);
        Assert.Equal([(7L, (short)0, 0), (7L, (short)1, 0), (7L, (short)1, 1)], batches.Select(b => (b.ProducerId, b.ProducerEpoch, b.BaseSequence)));
        var inits = fake.Received.Where(r => r.Key == ApiKey.InitProducerId).Select(r => (InitProducerIdRequest)r.Request).ToList();
        Assert.Equal([(-1L, (short)-1), (7L, (short)0)], inits.Select(i => (i.ProducerId, i.ProducerEpoch)));
    }
}
