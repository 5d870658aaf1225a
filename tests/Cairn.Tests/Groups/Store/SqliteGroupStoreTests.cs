using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Groups.Store;

public sealed class SqliteGroupStoreTests : GroupStoreContractTests
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-groups-sqlite-").FullName;

    private protected override int KnownSchemaVersion => SqliteGroupStore.SchemaVersion;

    private protected override Task<string> NewDatabaseAsync() =>
        Task.FromResult(Path.Combine(_dir, Guid.NewGuid().ToString("N"), SqliteGroupStore.DefaultFileName));

    private protected override IGroupStore CreateStore(string location, string clusterId) =>
        new SqliteGroupStore(clusterId, location, NullLogger.Instance, new SqliteGroupStoreOptions { BusyTimeout = TimeSpan.FromSeconds(10) });

    private protected override Task SetSchemaVersionAsync(string location, int version)
    {
        SQLitePCL.Batteries_V2.Init();
        using var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = location, Pooling = false }.ToString());
        conn.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "INSERT INTO schema_version (version, applied_ms) VALUES ($v, 0);";
        cmd.Parameters.AddWithValue("$v", version);
        cmd.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task ForDataDir_uses_groups_db_in_WAL_mode()
    {
        var dataDir = Path.Combine(_dir, "data");
        await using var store = SqliteGroupStore.ForDataDir("c", dataDir, NullLogger.Instance);
        await store.InitializeAsync();
        Assert.Equal(Path.Combine(dataDir, "groups.db"), store.DatabasePath);
        Assert.True(File.Exists(store.DatabasePath));

        using var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = store.DatabasePath, Pooling = false }.ToString());
        conn.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string?)cmd.ExecuteScalar());
        cmd.CommandText = "SELECT group_concat(version) FROM (SELECT version FROM schema_version ORDER BY version);";
        Assert.Equal(string.Join(',', Enumerable.Range(1, SqliteGroupStore.SchemaVersion)), (string?)cmd.ExecuteScalar());
    }

    [Fact]
    public async Task Acknowledged_commits_survive_a_store_that_is_never_disposed()
    {
        var location = await NewDatabaseAsync();
        // Not registered for disposal: this store "crashes" (is abandoned with its connections open).
        var crashed = CreateStore(location, ClusterA);
        await crashed.InitializeAsync();
        await crashed.SaveGroupAsync(SampleGroup("g"));
        var commits = Enumerable.Range(0, 20)
            .Select(i => crashed.CommitOffsetsAsync(One("g", Offset("t", TopicAId, i, 100 + i, metadata: i % 2 == 0 ? null : "m"))))
            .ToList();
        await Task.WhenAll(commits); // acknowledged

        var survivor = await OpenInitializedAsync(location);
        AssertOffsets(Enumerable.Range(0, 20).Select(i => Offset("t", TopicAId, i, 100 + i, metadata: i % 2 == 0 ? null : "m")),
            await survivor.GetGroupOffsetsAsync("g"));
        AssertGroup(SampleGroup("g"), Assert.Single(await survivor.GetGroupsAsync()));

        // The new instance can write while the abandoned one still holds its connections.
        await survivor.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 999)));
        Assert.Equal(999, (await survivor.GetGroupOffsetsAsync("g")).Single(o => o.Partition == 0).Offset);
        GC.KeepAlive(crashed);
    }

    [Fact]
    public async Task Concurrent_commits_are_coalesced_into_fewer_transactions()
    {
        var location = await NewDatabaseAsync();
        var store = (SqliteGroupStore)await OpenInitializedAsync(location);
        const int calls = 200;
        var tasks = Enumerable.Range(0, calls)
            .Select(i => store.CommitOffsetsAsync(One($"g{i % 10}", Offset("t", TopicAId, i, i))))
            .ToList();
        await Task.WhenAll(tasks);
        Assert.True(store.CommitTransactions < calls / 2, $"{calls} concurrent commits took {store.CommitTransactions} transactions");
        var all = await store.GetAllOffsetsAsync();
        Assert.Equal(calls, all.Values.Sum(v => v.Count));
    }
}
