using Cairn.Broker;
using Cairn.Protocol.Messages;
using Cairn.Tests.Groups.Store;

namespace Cairn.Tests.Broker;

/// <summary>The broker with `offset.store.connection` pointing at a real PostgreSQL server: commits survive a restart.</summary>
[Collection(PostgresServerCollection.Name)]
public sealed class PostgresOffsetStoreBrokerTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task Committed_offsets_live_in_PostgreSQL_across_broker_restarts()
    {
        var connection = await postgres.CreateDatabaseAsync("broker_offsets");
        var options = BrokerOptions.FromSettings([new("offset.store.connection", connection), new("admin.listen", "none")]);
        Assert.Equal(OffsetStoreKind.Postgres, options.OffsetStore);
        BrokerOptions Configure(BrokerOptions o) => o with { OffsetStore = options.OffsetStore, OffsetStoreConnection = options.OffsetStoreConnection, Admin = options.Admin };

        var broker = await BrokerHarness.StartAsync(Configure);
        var dataDir = broker.DataDir;
        using (var client = await broker.ConnectAsync())
        {
            await client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = "pg" }], AllowAutoTopicCreation = true }, 9);
            var commit = await client.SendAsync<OffsetCommitRequest, OffsetCommitResponse>(new()
            {
                GroupId = "pg-group", GenerationIdOrMemberEpoch = -1,
                Topics = [new() { Name = "pg", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 31, CommittedMetadata = "in postgres" }] }],
            }, 8);
            Assert.Equal(0, commit.Topics[0].Partitions[0].ErrorCode);
        }
        await broker.Broker.DisposeAsync();
        Assert.False(File.Exists(Path.Combine(dataDir, "groups.db")), "the SQLite store must not be used when PostgreSQL is configured");

        broker = await BrokerHarness.StartAsync(Configure, dataDir);
        try
        {
            using var client = await broker.ConnectAsync();
            var fetched = await client.SendAsync<OffsetFetchRequest, OffsetFetchResponse>(new() { GroupId = "pg-group", Topics = null }, 7);
            var p = fetched.Topics.Single().Partitions.Single();
            Assert.Equal((31L, "in postgres"), (p.CommittedOffset, p.Metadata));
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }
}
