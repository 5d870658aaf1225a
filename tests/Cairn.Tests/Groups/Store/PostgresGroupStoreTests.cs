using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Cairn.Tests.Groups.Store;

[Collection(PostgresServerCollection.Name)]
public sealed class PostgresGroupStoreTests(PostgresServerFixture server) : GroupStoreContractTests
{
    private static int _counter;

    private protected override int KnownSchemaVersion => PostgresGroupStore.SchemaVersion;

    private protected override Task<string> NewDatabaseAsync() =>
        server.CreateDatabaseAsync($"groups_{Environment.ProcessId}_{Interlocked.Increment(ref _counter)}");

    private protected override IGroupStore CreateStore(string location, string clusterId) =>
        new PostgresGroupStore(clusterId, location, NullLogger.Instance);

    private protected override async Task SetSchemaVersionAsync(string location, int version)
    {
        await using var conn = new NpgsqlConnection(location);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("INSERT INTO schema_version (version) VALUES ($1)", conn);
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Schema_versions_are_recorded_once_each()
    {
        var location = await NewDatabaseAsync();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Open(location).InitializeAsync()));
        await using var conn = new NpgsqlConnection(location);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version", conn);
        Assert.Equal(string.Join(',', Enumerable.Range(1, PostgresGroupStore.SchemaVersion)), (string?)await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_bad_commit_fails_alone_and_does_not_fail_its_batch()
    {
        var (_, store) = await FreshAsync();
        // PostgreSQL text cannot hold NUL: this request fails however it is batched; the others must not.
        var tasks = Enumerable.Range(0, 30)
            .Select(i => store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, i, i, metadata: i == 15 ? "bad\0metadata" : "ok"))))
            .ToList();
        for (var i = 0; i < tasks.Count; i++)
        {
            if (i == 15) await Assert.ThrowsAnyAsync<Exception>(() => tasks[i]);
            else await tasks[i];
        }
        var got = await store.GetGroupOffsetsAsync("g");
        Assert.Equal(29, got.Count);
        Assert.DoesNotContain(got, o => o.Partition == 15);
    }

    [Fact]
    public async Task Concurrent_commits_are_coalesced_into_fewer_transactions()
    {
        var (_, store) = await FreshAsync();
        const int calls = 200;
        await Task.WhenAll(Enumerable.Range(0, calls).Select(i => store.CommitOffsetsAsync(One($"g{i % 10}", Offset("t", TopicAId, i, i)))));
        var transactions = ((PostgresGroupStore)store).CommitTransactions;
        Assert.True(transactions < calls / 2, $"{calls} concurrent commits took {transactions} transactions");
        Assert.Equal(calls, (await store.GetAllOffsetsAsync()).Values.Sum(v => v.Count));
    }
}
