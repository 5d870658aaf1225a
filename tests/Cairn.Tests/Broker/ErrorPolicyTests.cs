using System.Data.Common;
using System.Net;
using Cairn.Broker;
using Cairn.Broker.Handlers;
using Cairn.Broker.Network;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;
using Cairn.Tests.Client;
using Cairn.Tests.Groups.Store;
using Cairn.Tests.Offsets;
using Microsoft.Extensions.Logging;

namespace Cairn.Tests.Broker;

/// <summary>
/// One error policy for every API: a failing handler (or response) is answered with that API's error code for every part
/// of the request, the connection stays usable, and each failure is one log line; only malformed requests close it.
/// </summary>
public sealed class ErrorPolicyTests
{
    private const short StorageError = (short)ErrorCode.KafkaStorageError;
    private const short CoordinatorNotAvailable = (short)ErrorCode.CoordinatorNotAvailable;

    /// <summary>A handler of a real API whose work throws <see cref="Failure"/> while it is set, and answers a default response otherwise.</summary>
    private sealed class FailingHandler<TRequest, TResponse>(VersionRange versions) : ApiHandler<TRequest, TResponse>
        where TRequest : class, new()
        where TResponse : class, new()
    {
        public Exception? Failure { get; set; }
        public Func<TRequest, bool> TakesNoResponse { get; init; } = _ => false;
        public override VersionRange Versions => versions;

        protected override ValueTask<TResponse?> HandleAsync(RequestContext context, TRequest request, CancellationToken cancellationToken) =>
            Failure is { } failure ? throw failure : ValueTask.FromResult<TResponse?>(new TResponse());

        protected override TResponse? ErrorResponse(RequestContext context, TRequest request, ErrorCode error) =>
            TakesNoResponse(request) ? null : base.ErrorResponse(context, request, error);
    }

    private sealed class StoreDownException(string message) : DbException(message);

    /// <summary>The connection layer alone, on loopback, in front of the given handlers.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly KafkaServer _server;

        public Server(params IApiHandler[] handlers)
        {
            _server = new KafkaServer(KafkaServer.BindExclusive(new IPEndPoint(IPAddress.Loopback, 0)), new HandlerRegistry(handlers), 1 << 20, Log);
            _server.Start();
        }

        public ListLogger Log { get; } = new();

        public List<(LogLevel Level, string Message, Exception? Exception)> Lines
        {
            get { lock (Log.Entries) return [.. Log.Entries]; }
        }

        public Task<WireClient> ConnectAsync() => WireClient.ConnectAsync(_server.LocalEndPoint.Port);

        public ValueTask DisposeAsync() => _server.DisposeAsync();
    }

    private static ProduceRequest TwoTopicProduce() => new()
    {
        Acks = -1, TimeoutMs = 1000,
        TopicData =
        [
            new() { Name = "a", PartitionData = [new() { Index = 0, Records = new MemoryRecords(Batches.Build(1)) }, new() { Index = 3, Records = new MemoryRecords(Batches.Build(1)) }] },
            new() { Name = "b", PartitionData = [new() { Index = 1, Records = new MemoryRecords(Batches.Build(1)) }] },
        ],
    };

    [Fact]
    public async Task Produce_failing_with_an_IO_error_answers_KAFKA_STORAGE_ERROR_for_every_partition_and_the_connection_stays_up()
    {
        var handler = new FailingHandler<ProduceRequest, ProduceResponse>(new(0, 11)) { Failure = new IOException("disk gone") };
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();

        var response = await client.SendAsync<ProduceRequest, ProduceResponse>(TwoTopicProduce(), 9);
        Assert.Equal(new[] { "a", "b" }, response.Responses.Select(t => t.Name));
        Assert.Equal(new[] { 0, 3 }, response.Responses[0].PartitionResponses.Select(p => p.Index));
        Assert.Equal(new[] { 1 }, response.Responses[1].PartitionResponses.Select(p => p.Index));
        Assert.All(response.Responses.SelectMany(t => t.PartitionResponses), p =>
        {
            Assert.Equal(StorageError, p.ErrorCode);
            Assert.Equal(-1, p.BaseOffset);
        });

        var line = Assert.Single(server.Lines);
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.IsType<IOException>(line.Exception);
        Assert.Contains("Produce v9 request 1 from client cairn-tests failed, answering KafkaStorageError", line.Message);

        handler.Failure = null;
        var next = await client.SendAsync<ProduceRequest, ProduceResponse>(TwoTopicProduce(), 9);
        Assert.Empty(next.Responses); // the handler's own (default) response: the same connection serves on
    }

    [Fact]
    public async Task Produce_with_acks_0_that_fails_closes_the_connection_with_one_line()
    {
        var handler = new FailingHandler<ProduceRequest, ProduceResponse>(new(0, 11))
        {
            Failure = new IOException("disk gone"), TakesNoResponse = r => r.Acks == 0,
        };
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();
        var request = TwoTopicProduce();
        request.Acks = 0;
        await client.SendOnlyAsync(request, 9);
        Assert.True(await client.IsClosedByPeerAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(server.Lines);
        Assert.Contains("takes no response, closing", line.Message);
    }

    [Fact]
    public async Task Fetch_failing_answers_the_error_for_every_partition_with_empty_records()
    {
        var handler = new FailingHandler<FetchRequest, FetchResponse>(new(4, 17)) { Failure = new IOException("segment gone") };
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();
        var request = new FetchRequest
        {
            MaxWaitMs = 0, SessionId = 7, SessionEpoch = 3,
            Topics = [new() { Topic = "t", Partitions = [new() { Partition = 0, FetchOffset = 5 }, new() { Partition = 1, FetchOffset = 9 }] }],
        };

        var response = await client.SendAsync<FetchRequest, FetchResponse>(request, 12);
        Assert.Equal(StorageError, response.ErrorCode);
        Assert.Equal(0, response.SessionId);
        var topic = Assert.Single(response.Responses);
        Assert.Equal("t", topic.Topic);
        Assert.Equal(new[] { 0, 1 }, topic.Partitions.Select(p => p.PartitionIndex));
        Assert.All(topic.Partitions, p =>
        {
            Assert.Equal(StorageError, p.ErrorCode);
            Assert.Equal((-1L, -1L, -1L), (p.HighWatermark, p.LastStableOffset, p.LogStartOffset));
            Assert.Equal(0, p.Records!.Length); // empty, not null: librdkafka rejects a negative records size
        });
    }

    [Fact]
    public async Task OffsetCommit_with_the_group_store_down_answers_COORDINATOR_NOT_AVAILABLE_and_a_bug_UNKNOWN_SERVER_ERROR()
    {
        var handler = new FailingHandler<OffsetCommitRequest, OffsetCommitResponse>(new(0, 9)) { Failure = new StoreDownException("database is locked") };
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();
        var request = new OffsetCommitRequest
        {
            GroupId = "g", GenerationIdOrMemberEpoch = 4, MemberId = "m",
            Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 2, CommittedOffset = 10 }, new() { PartitionIndex = 5, CommittedOffset = 11 }] }],
        };

        var response = await client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(request, 8);
        var topic = Assert.Single(response.Topics);
        Assert.Equal("t", topic.Name);
        Assert.Equal(new[] { (2, CoordinatorNotAvailable), (5, CoordinatorNotAvailable) }, topic.Partitions.Select(p => (p.PartitionIndex, p.ErrorCode)));

        // A store failure wrapped by the layer above it is still a store failure.
        handler.Failure = new InvalidOperationException("commit failed", new TimeoutException("no answer from the database"));
        response = await client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(request, 2);
        Assert.All(response.Topics[0].Partitions, p => Assert.Equal(CoordinatorNotAvailable, p.ErrorCode));

        handler.Failure = new InvalidOperationException("a bug");
        response = await client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(request, 8);
        Assert.All(response.Topics[0].Partitions, p => Assert.Equal((short)ErrorCode.UnknownServerError, p.ErrorCode));
        Assert.Equal(3, server.Lines.Count(l => l.Level == LogLevel.Warning));
        Assert.Equal(3, server.Lines.Count);
    }

    [Fact]
    public async Task OffsetFetch_with_the_group_store_down_answers_COORDINATOR_NOT_AVAILABLE_per_group_and_per_partition()
    {
        var handler = new FailingHandler<OffsetFetchRequest, OffsetFetchResponse>(new(0, 9)) { Failure = new StoreDownException("connection refused") };
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();

        var single = await client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(
            new() { GroupId = "g", Topics = [new() { Name = "t", PartitionIndexes = [0, 4] }] }, 7);
        Assert.Equal(CoordinatorNotAvailable, single.ErrorCode);
        Assert.Equal(new[] { (0, -1L, CoordinatorNotAvailable), (4, -1L, CoordinatorNotAvailable) },
            single.Topics.Single().Partitions.Select(p => (p.PartitionIndex, p.CommittedOffset, p.ErrorCode)));

        var several = await client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(new()
        {
            Groups = [new() { GroupId = "g1", Topics = null }, new() { GroupId = "g2", Topics = [new() { Name = "t", PartitionIndexes = [3] }] }],
        }, 8);
        Assert.Equal(new[] { "g1", "g2" }, several.Groups.Select(g => g.GroupId));
        Assert.All(several.Groups, g => Assert.Equal(CoordinatorNotAvailable, g.ErrorCode));
        Assert.Empty(several.Groups[0].Topics); // "all partitions" has nothing to repeat
        Assert.Equal((3, CoordinatorNotAvailable), several.Groups[1].Topics.Single().Partitions.Select(p => (p.PartitionIndex, p.ErrorCode)).Single());
    }

    [Fact]
    public async Task JoinGroup_with_the_group_store_down_answers_COORDINATOR_NOT_AVAILABLE()
    {
        var handler = new FailingHandler<JoinGroupRequest, JoinGroupResponse>(new(0, 9)) { Failure = new StoreDownException("readonly database") };
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();
        var request = new JoinGroupRequest
        {
            GroupId = "g", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, MemberId = "member-1", ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = [0, 1] }],
        };

        var response = await client.SendAsync<JoinGroupRequest, JoinGroupResponse>(request, 7);
        Assert.Equal(CoordinatorNotAvailable, response.ErrorCode);
        Assert.Equal(-1, response.GenerationId);
        Assert.Equal("", response.MemberId);
        Assert.Empty(response.Members);

        handler.Failure = null;
        Assert.Equal(0, (await client.SendAsync<JoinGroupRequest, JoinGroupResponse>(request, 7)).ErrorCode);
        Assert.Single(server.Lines);
    }

    [Fact]
    public async Task A_malformed_request_body_closes_the_connection_with_one_line()
    {
        var handler = new FailingHandler<OffsetCommitRequest, OffsetCommitResponse>(new(0, 9));
        await using var server = new Server(handler);
        using var client = await server.ConnectAsync();
        using var writer = new KafkaWriter();
        writer.Advance(4);
        new RequestHeader(ApiKey.OffsetCommit, 2, 1, "broken-client").Write(writer);
        writer.WriteInt16(40); // a group id claiming 40 bytes, with none following
        writer.PatchInt32(0, writer.Position - 4);
        await client.SendRawAsync(writer.WrittenMemory);

        Assert.True(await client.IsClosedByPeerAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(server.Lines);
        Assert.Contains("malformed OffsetCommit v2 request", line.Message);
    }

    /// <summary>The partition directory's log file of a running broker.</summary>
    private static string SegmentFile(string dataDir, string topic, int partition) =>
        Directory.GetFiles(Path.Combine(dataDir, $"{topic}-{partition}"), "*.log").Single();

    private static void Truncate(string path, long length)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        file.SetLength(length);
    }

    [Fact]
    public async Task Fetch_with_one_unreadable_partition_returns_the_others_and_KAFKA_STORAGE_ERROR_for_it()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        var logs = new CapturingLoggerFactory();
        var options = BrokerOptions.FromSettings([new("admin.listen", "none")]) with { ListenPort = 0, DataDir = dataDir, DefaultPartitions = 3 };
        var broker = await KafkaBroker.StartAsync(options, logs);
        try
        {
            using var client = await WireClient.ConnectAsync(broker.LocalEndPoint.Port);
            for (int p = 0; p < 3; p++)
            {
                var produced = await client.SendAsync<ProduceRequest, ProduceResponse>(new()
                {
                    Acks = -1, TimeoutMs = 5000,
                    TopicData = [new() { Name = "disk", PartitionData = [new() { Index = p, Records = new MemoryRecords(Batches.Build(20, "value-")) }] }],
                }, 9);
                Assert.Equal(0, produced.Responses[0].PartitionResponses[0].ErrorCode);
            }
            // Partition 1 keeps its batch header but loses the rest: the failure surfaces while the response is written,
            // when the batch is copied from the file. Partition 2 loses everything: the read itself fails.
            Truncate(SegmentFile(dataDir, "disk", 1), RecordBatchHeader.Size + 5);
            Truncate(SegmentFile(dataDir, "disk", 2), 0);
            var before = logs.Lines.Count;

            var fetch = new FetchRequest
            {
                MaxWaitMs = 0, MaxBytes = 1 << 20, SessionEpoch = -1,
                Topics = [new() { Topic = "disk", Partitions = [.. Enumerable.Range(0, 3).Select(p => new FetchRequest.FetchTopic.FetchPartition { Partition = p, PartitionMaxBytes = 1 << 20 })] }],
            };
            var response = await client.SendAsync<FetchRequest, FetchResponse>(fetch, 12);
            Assert.Equal(0, response.ErrorCode);
            var partitions = response.Responses.Single().Partitions;
            Assert.Equal(new[] { 0, 1, 2 }, partitions.Select(p => p.PartitionIndex));
            Assert.Equal(0, partitions[0].ErrorCode);
            Assert.Equal(20, Batches.ReadAll(partitions[0].Records).Count);
            Assert.Equal(20, partitions[0].HighWatermark);
            foreach (var failed in partitions.Skip(1))
            {
                Assert.Equal(StorageError, failed.ErrorCode);
                Assert.Equal(0, failed.Records!.Length);
            }
            var written = Assert.Single(logs.Lines.Skip(before), l => l.Message.Contains("stored records could not be read"));
            Assert.Equal(LogLevel.Warning, written.Level);
            Assert.Contains("Fetch v12 request 4 from client cairn-tests", written.Message);

            // The connection serves on.
            fetch.Topics[0].Partitions.RemoveRange(1, 2);
            var again = await client.SendAsync<FetchRequest, FetchResponse>(fetch, 12);
            Assert.Equal(20, Batches.ReadAll(again.Responses.Single().Partitions.Single().Records).Count);
        }
        finally
        {
            await broker.DisposeAsync();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>A real PostgreSQL group store going away under a running broker.</summary>
[Collection(PostgresServerCollection.Name)]
public sealed class GroupStoreFailureTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task OffsetCommit_with_the_database_gone_answers_COORDINATOR_NOT_AVAILABLE_and_the_connection_stays_up()
    {
        const string database = "broker_store_down";
        var connection = await postgres.CreateDatabaseAsync(database);
        var settings = BrokerOptions.FromSettings([new("offset.store.connection", connection), new("admin.listen", "none")]);
        var broker = await BrokerHarness.StartAsync(o => o with
        {
            OffsetStore = settings.OffsetStore, OffsetStoreConnection = settings.OffsetStoreConnection, Admin = settings.Admin,
        });
        try
        {
            using var client = await broker.ConnectAsync();
            await client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "pg" }], AllowAutoTopicCreation = true }, 9);
            OffsetCommitRequest Commit(long offset) => new()
            {
                GroupId = "store-down", GenerationIdOrMemberEpoch = -1,
                Topics = [new() { Name = "pg", Partitions = [new() { PartitionIndex = 0, CommittedOffset = offset }] }],
            };
            var ok = await client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(Commit(5), 8);
            Assert.Equal(0, ok.Topics[0].Partitions[0].ErrorCode);

            await postgres.Server.DropDatabaseAsync(database);

            var failed = await client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(Commit(6), 8);
            Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, failed.Topics.Single().Partitions.Single().ErrorCode);
            // Same connection: committed offsets are served from the coordinator's memory, the failed commit is not among them.
            var fetched = await client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(
                new() { GroupId = "store-down", Topics = [new() { Name = "pg", PartitionIndexes = [0] }] }, 7);
            Assert.Equal((0, 5L), (fetched.ErrorCode, fetched.Topics.Single().Partitions.Single().CommittedOffset));
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }
}
