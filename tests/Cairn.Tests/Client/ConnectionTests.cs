using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cairn.Client;
using Cairn.Client.Internal;
using Cairn.Offsets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Client;

public sealed class ConnectionTests : ClientTestBase
{
    [Fact]
    public async Task Versions_are_the_highest_both_sides_support()
    {
        await using var cluster = new KafkaCluster(ClientOptions, "test");
        var connection = await cluster.GetConnectionAsync(-1, CancellationToken.None);
        Assert.Equal(17, connection.GetVersion(ApiKey.Fetch));        // broker 4-17, client 0-17
        Assert.Equal(10, connection.GetVersion(ApiKey.ListOffsets)); // broker 1-10
        Assert.Equal(11, connection.GetVersion(ApiKey.Produce));
        Assert.Equal(12, connection.GetVersion(ApiKey.Metadata));
        Assert.Equal(0, connection.GetVersion(ApiKey.OffsetDelete));
        Assert.Equal(-1, connection.GetVersion(ApiKey.SaslHandshake)); // not offered by the broker
        Assert.Equal(new Cairn.Protocol.Schema.VersionRange(4, 17), connection.BrokerVersions[ApiKey.Fetch]);
    }

    [Fact]
    public async Task Requests_are_pipelined_on_one_connection()
    {
        await using var cluster = new KafkaCluster(ClientOptions, "test");
        var connection = await cluster.GetConnectionAsync(-1, CancellationToken.None);
        await Admin.CreateTopicAsync("piped", 4);
        var requests = Enumerable.Range(0, 300).Select(i => cluster.SendAsync<MetadataRequest, MetadataResponse>(connection, v => new MetadataRequest
        {
            Topics = [new() { Name = i % 2 == 0 ? "piped" : "nope-" + i }], AllowAutoTopicCreation = false,
        }, CancellationToken.None)).ToList();
        var responses = await Task.WhenAll(requests);
        for (int i = 0; i < responses.Length; i++)
        {
            var topic = responses[i].Response.Topics.Single();
            Assert.Equal(i % 2 == 0 ? "piped" : "nope-" + i, topic.Name); // each answer belongs to its own request
            Assert.Equal(i % 2 == 0 ? 0 : (short)ErrorCode.UnknownTopicOrPartition, topic.ErrorCode);
        }
        Assert.Same(connection, await cluster.GetConnectionAsync(-1, CancellationToken.None));
    }

    [Fact]
    public async Task Old_protocol_versions_still_work_end_to_end()
    {
        // The oldest versions this broker offers for each API, to exercise the version-dependent request shapes.
        var old = ClientOptions with
        {
            MaxApiVersions = new Dictionary<ApiKey, short>
            {
                [ApiKey.ApiVersions] = 0, [ApiKey.Metadata] = 1, [ApiKey.Produce] = 3, [ApiKey.Fetch] = 4, [ApiKey.ListOffsets] = 1,
                [ApiKey.FindCoordinator] = 0, [ApiKey.OffsetCommit] = 2, [ApiKey.OffsetFetch] = 2, [ApiKey.CreateTopics] = 0,
                [ApiKey.DeleteTopics] = 0, [ApiKey.DescribeConfigs] = 0, [ApiKey.ListGroups] = 0, [ApiKey.DescribeGroups] = 0,
                [ApiKey.DeleteGroups] = 0, [ApiKey.DeleteRecords] = 0, [ApiKey.InitProducerId] = 0, [ApiKey.CreatePartitions] = 0,
            },
        };
        await using var admin = new KafkaAdminClient(old);
        await admin.CreateTopicsAsync([new NewTopic("old", 2, 1)]);
        await admin.CreatePartitionsAsync("old", 3);
        var topic = (await admin.DescribeTopicsAsync(["old"])).Single();
        Assert.Equal(3, topic.Partitions.Count);
        Assert.Contains(await admin.DescribeConfigsAsync(ConfigResource.Topic("old")), c => c.Name == "retention.ms" && c.IsDefault);

        await using (var producer = new KafkaProducer(old, new ProducerOptions { Idempotent = true, Compression = CompressionCodec.Lz4 }))
        {
            for (int i = 0; i < 10; i++) await producer.ProduceAsync(new TopicPartition("old", 1), Message.FromStrings("k" + i, "v" + i));
        }
        await using var consumer = new KafkaConsumer(old, new ConsumerOptions { MaxWait = TimeSpan.FromMilliseconds(100) });
        var tp = new TopicPartition("old", 1);
        consumer.Assign([tp]);
        await consumer.SeekAsync(tp, Offset.Sequence(3));
        var records = await ConsumeAsync(consumer, 7);
        Assert.Equal(Enumerable.Range(3, 7).Select(i => "v" + i), records.Select(r => r.ValueAsString()));
        Assert.Equal(10, (await admin.ListOffsetsAsync([tp], OffsetSpec.Latest))[tp].Offset);

        await admin.CommitGroupOffsetsAsync("old-group", new Dictionary<TopicPartition, OffsetAndMetadata> { [tp] = new(4, "m") });
        Assert.Equal(new OffsetAndMetadata(4, "m"), (await admin.FetchCommittedOffsetsAsync("old-group"))[tp]);
        Assert.Contains(await admin.ListGroupsAsync(), g => g.GroupId == "old-group" && g.State is null);
        Assert.Equal("Empty", (await admin.DescribeGroupsAsync(["old-group"])).Single().State);
        await admin.DeleteRecordsAsync(new Dictionary<TopicPartition, long> { [tp] = 2 });
        await admin.DeleteGroupsAsync(["old-group"]);
        await admin.DeleteTopicsAsync(["old"]);
        Assert.Empty(await admin.ListTopicsAsync());
    }

    [Fact]
    public async Task Fetch_uses_topic_names_when_ids_are_unknown()
    {
        // Metadata v9 carries no topic ids, so fetches must stay at v12 (names) rather than v13+ (ids).
        var options = ClientOptions with { MaxApiVersions = new Dictionary<ApiKey, short> { [ApiKey.Metadata] = 9 } };
        await Admin.CreateTopicAsync("by-name", 1);
        await using var producer = new KafkaProducer(options);
        await producer.ProduceAsync("by-name", Message.FromStrings("k", "v"));
        await using var consumer = new KafkaConsumer(options, new ConsumerOptions { AutoOffsetReset = AutoOffsetReset.Earliest });
        consumer.Assign([new TopicPartition("by-name", 0)]);
        Assert.Equal("v", (await ConsumeAsync(consumer, 1))[0].ValueAsString());
    }

    [Fact]
    public void Bootstrap_lists_are_parsed()
    {
        Assert.Equal([("a", 1), ("::1", 2), ("b", 9092)], BootstrapParser.Parse(" a:1, [::1]:2 ,b"));
        Assert.Throws<ArgumentException>(() => BootstrapParser.Parse("a:notaport"));
        Assert.Throws<ArgumentException>(() => BootstrapParser.Parse("::1:9092"));
        Assert.Throws<ArgumentException>(() => BootstrapParser.Parse(" , "));
        Assert.Throws<ArgumentException>(() => new KafkaAdminClient(new KafkaClientOptions { BootstrapServers = "" }));
    }

    [Fact]
    public async Task Unreachable_brokers_fail_with_a_network_error()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        await using var admin = new KafkaAdminClient(new KafkaClientOptions { BootstrapServers = $"127.0.0.1:{port}", Retries = 1, RetryBackoff = TimeSpan.FromMilliseconds(10) });
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<KafkaException>(() => admin.ListTopicsAsync());
        Assert.Equal(ErrorCode.NetworkException, e.Error);
        Assert.True(e.IsRetriable);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.InRange(sw.ElapsedMilliseconds, 0, 15_000); // refused at once, not waiting out the 30 s request timeout
    }

    [Fact]
    public async Task A_broker_that_does_not_answer_times_out_and_the_connection_is_replaced()
    {
        // Accepts connections and reads requests, but never writes a byte.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepted = new System.Collections.Concurrent.ConcurrentQueue<Socket>();
        var accepting = Task.Run(async () =>
        {
            try { while (true) accepted.Enqueue(await listener.AcceptSocketAsync()); } catch (Exception) { }
        });
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            await using var admin = new KafkaAdminClient(new KafkaClientOptions
            {
                BootstrapServers = $"127.0.0.1:{port}", RequestTimeout = TimeSpan.FromMilliseconds(300), Retries = 1, RetryBackoff = TimeSpan.FromMilliseconds(10),
            });
            var sw = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<KafkaException>(() => admin.ListTopicsAsync());
            Assert.Equal(ErrorCode.RequestTimedOut, e.Error);
            Assert.InRange(sw.ElapsedMilliseconds, 250, 15_000); // two 300 ms timeouts; generous for a loaded box
            // A new connection for the retry. The kernel completes a connect before the accept loop runs, so the
            // second connection may still be on its way to the list: wait for it (bounded), then check there is no third.
            for (var clock = Stopwatch.StartNew(); accepted.Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(30);) await Task.Delay(20);
            Assert.Equal(2, accepted.Count);
        }
        finally
        {
            listener.Stop();
            foreach (var s in accepted) s.Dispose();
            await accepting;
        }
    }

    [Fact]
    public async Task Clients_reconnect_after_a_broker_restart()
    {
        int port = FreePort();
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        var first = await BrokerHarness.StartAsync(o => o with { ListenPort = port, OffsetStore = Cairn.Broker.OffsetStoreKind.Sqlite }, dataDir);
        BrokerHarness? second = null;
        try
        {
            var options = ClientOptions with { BootstrapServers = $"127.0.0.1:{port}", Retries = 10, RetryBackoff = TimeSpan.FromMilliseconds(50) };
            await using var producer = new KafkaProducer(options, new ProducerOptions { Idempotent = true, Linger = TimeSpan.Zero });
            await using var consumer = new KafkaConsumer(options, new ConsumerOptions { MaxWait = TimeSpan.FromMilliseconds(100), AutoOffsetReset = AutoOffsetReset.Earliest });
            await using var admin = new KafkaAdminClient(options);
            var tp = new TopicPartition("restarts", 0);
            await producer.ProduceAsync(tp, Message.FromStrings("k", "before"));
            consumer.Assign([tp]);
            Assert.Equal("before", (await ConsumeAsync(consumer, 1))[0].ValueAsString());
            await admin.CommitGroupOffsetsAsync("survivor", new Dictionary<TopicPartition, OffsetAndMetadata> { [tp] = new(1) });

            await first.Broker.DisposeAsync();
            second = await BrokerHarness.StartAsync(o => o with { ListenPort = port, OffsetStore = Cairn.Broker.OffsetStoreKind.Sqlite }, dataDir);

            var after = await producer.ProduceAsync(tp, Message.FromStrings("k", "after")).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(1, after.Offset);
            Assert.Equal("after", (await ConsumeAsync(consumer, 1))[0].ValueAsString());
            Assert.Equal(1, (await admin.FetchCommittedOffsetsAsync("survivor"))[tp].Offset);
        }
        finally
        {
            if (second is not null) await second.DisposeAsync();
            else await first.DisposeAsync();
        }
    }

    internal static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
