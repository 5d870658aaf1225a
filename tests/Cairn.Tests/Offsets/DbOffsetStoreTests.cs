using System.Data.Common;
using Cairn.Offsets;
using Cairn.Tests.Groups.Store;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Cairn.Tests.Offsets;

/// <summary>The contract plus what the SQL stores add: schema migration, and commits inside the caller's transaction.</summary>
public abstract class DbOffsetStoreContractTests : OffsetStoreContractTests
{
    private string? _connectionString;

    protected string ConnectionString => _connectionString ?? throw new InvalidOperationException("no database yet");

    /// <summary>A fresh, empty database; returns its connection string.</summary>
    protected abstract Task<string> NewDatabaseAsync(string name);

    protected abstract DbOffsetStore NewStore(string connectionString, string consumer = "default");

    protected abstract Task<DbConnection> OpenRawAsync(string connectionString);

    protected override async Task<IOffsetStore> CreateStoreAsync()
    {
        _connectionString = await NewDatabaseAsync("offsets_" + Guid.NewGuid().ToString("N")[..12]);
        var store = NewStore(_connectionString);
        await store.MigrateAsync();
        return store;
    }

    protected override async Task<IOffsetStore?> ReopenAsync()
    {
        var store = NewStore(ConnectionString);
        await store.MigrateAsync();
        return store;
    }

    private DbOffsetStore DbStore => (DbOffsetStore)Store;

    private static async Task ExecAsync(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.Value = value;
            command.Parameters.Add(p);
        }
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task The_schema_is_created_with_its_version_recorded()
    {
        Assert.Equal(2, DbStore.LatestSchemaVersion);
        Assert.Equal(2, await DbStore.GetSchemaVersionAsync());
        await using var connection = await OpenRawAsync(ConnectionString);
        Assert.Equal(2, await CountAsync(connection, "SELECT COUNT(*) FROM cairn_offsets_schema"));
        Assert.Equal(2, await CountAsync(connection, "SELECT MAX(version) FROM cairn_offsets_schema"));
        // Opening again applies nothing more.
        await using var again = NewStore(ConnectionString);
        await again.MigrateAsync();
        Assert.Equal(2, await CountAsync(connection, "SELECT COUNT(*) FROM cairn_offsets_schema"));
    }

    [Fact]
    public async Task A_version_1_database_is_migrated_in_order_keeping_its_offsets()
    {
        var cs = await NewDatabaseAsync("offsets_v1_" + Guid.NewGuid().ToString("N")[..8]);
        await using (var connection = await OpenRawAsync(cs))
        {
            await ExecAsync(connection, null, "CREATE TABLE cairn_offsets_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
            await ExecAsync(connection, null,
                "CREATE TABLE cairn_offsets (consumer TEXT NOT NULL, source TEXT NOT NULL, offset_value TEXT NOT NULL, PRIMARY KEY (consumer, source))");
            await ExecAsync(connection, null, "INSERT INTO cairn_offsets_schema (version, applied_at) VALUES (1, 'then')");
            await ExecAsync(connection, null, "INSERT INTO cairn_offsets (consumer, source, offset_value) VALUES ('default', 'orders/0', 'seq:77')");
        }
        await using var store = NewStore(cs);
        Assert.Equal(1, await store.GetSchemaVersionAsync());
        Assert.Equal(Offset.Sequence(77), await store.GetAsync("orders/0")); // migrates on first use
        Assert.Equal(2, await store.GetSchemaVersionAsync());
        await store.CommitAsync("orders/0", Offset.Sequence(78));
        await using var check = await OpenRawAsync(cs);
        Assert.Equal(1, await CountAsync(check, "SELECT COUNT(*) FROM cairn_offsets WHERE committed_at IS NOT NULL"));
    }

    [Fact]
    public async Task A_database_from_a_newer_version_is_refused()
    {
        await using (var connection = await OpenRawAsync(ConnectionString))
            await ExecAsync(connection, null, "INSERT INTO cairn_offsets_schema (version, applied_at) VALUES (99, 'future')");
        await using var store = NewStore(ConnectionString);
        var ex = await Assert.ThrowsAsync<OffsetStoreException>(() => store.MigrateAsync());
        Assert.Contains("99", ex.Message);
        Assert.Contains("newer", ex.Message);
    }

    [Fact]
    public async Task Stores_opened_concurrently_on_a_fresh_database_migrate_once()
    {
        var cs = await NewDatabaseAsync("offsets_race_" + Guid.NewGuid().ToString("N")[..8]);
        var stores = Enumerable.Range(0, 4).Select(_ => NewStore(cs)).ToArray();
        await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync())));
        foreach (var s in stores) Assert.Equal(2, await s.GetSchemaVersionAsync());
        await using var connection = await OpenRawAsync(cs);
        Assert.Equal(2, await CountAsync(connection, "SELECT COUNT(*) FROM cairn_offsets_schema"));
        foreach (var s in stores) await s.DisposeAsync();
    }

    [Fact]
    public async Task Consumers_sharing_a_database_keep_separate_offsets()
    {
        await using var other = NewStore(ConnectionString, "other-consumer");
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        await other.CommitAsync("orders/0", Offset.Sequence(2));
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("orders/0"));
        Assert.Equal(Offset.Sequence(2), await other.GetAsync("orders/0"));
        await Store.ClearAllAsync();
        Assert.Equal(Offset.Sequence(2), await other.GetAsync("orders/0"));
    }

    [Fact]
    public async Task An_unparseable_stored_offset_is_reported_with_its_source()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        await using (var connection = await OpenRawAsync(ConnectionString))
            await ExecAsync(connection, null, "UPDATE cairn_offsets SET offset_value = 'seq:oops'");
        var ex = await Assert.ThrowsAsync<OffsetSerializationException>(async () => await Store.GetAsync("orders/0"));
        Assert.Equal("orders/0", ex.SourceName);
        Assert.Contains("seq:oops", ex.Message);
        await Assert.ThrowsAsync<OffsetSerializationException>(async () => await Store.GetAllAsync());
    }

    private async Task CreateResultsTableAsync()
    {
        await using var connection = await OpenRawAsync(ConnectionString);
        await ExecAsync(connection, null, "CREATE TABLE results (id INTEGER PRIMARY KEY, value TEXT NOT NULL)");
    }

    [Fact]
    public async Task An_offset_committed_in_the_callers_transaction_is_kept_with_its_results()
    {
        await CreateResultsTableAsync();
        await using (var connection = await DbStore.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await ExecAsync(connection, transaction, "INSERT INTO results (id, value) VALUES (@id, @value)", ("id", 1), ("value", "one"));
            await DbStore.CommitAsync("orders/0", Offset.Sequence(2), transaction);
            Assert.Equal(Offset.Sequence(2), await DbStore.GetAsync("orders/0", transaction)); // visible inside
            await transaction.CommitAsync();
        }
        Assert.Equal(Offset.Sequence(2), await Store.GetAsync("orders/0"));
        await using var check = await OpenRawAsync(ConnectionString);
        Assert.Equal(1, await CountAsync(check, "SELECT COUNT(*) FROM results"));
    }

    [Fact]
    public async Task A_rolled_back_transaction_keeps_neither_the_results_nor_the_offset()
    {
        await CreateResultsTableAsync();
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        await using (var connection = await OpenRawAsync(ConnectionString))
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await ExecAsync(connection, transaction, "INSERT INTO results (id, value) VALUES (@id, @value)", ("id", 1), ("value", "one"));
            await DbStore.CommitAsync("orders/0", Offset.Sequence(2), transaction);
            await DbStore.ClearAsync("orders/9", transaction);
            await transaction.RollbackAsync();
        }
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("orders/0"));
        await using var check = await OpenRawAsync(ConnectionString);
        Assert.Equal(0, await CountAsync(check, "SELECT COUNT(*) FROM results"));

        // And an abandoned one (disposed without commit, as when the process dies) is the same.
        await using (var connection = await OpenRawAsync(ConnectionString))
        {
            var transaction = await connection.BeginTransactionAsync();
            await ExecAsync(connection, transaction, "INSERT INTO results (id, value) VALUES (@id, @value)", ("id", 1), ("value", "one"));
            await DbStore.CommitAsync("orders/0", Offset.Sequence(3), transaction);
        }
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("orders/0"));
        Assert.Equal(0, await CountAsync(check, "SELECT COUNT(*) FROM results"));
    }

    [Fact]
    public async Task A_transaction_on_another_database_is_refused()
    {
        var otherCs = await NewDatabaseAsync("offsets_other_" + Guid.NewGuid().ToString("N")[..8]);
        await using var connection = await OpenRawAsync(otherCs);
        await using var transaction = await connection.BeginTransactionAsync();
        var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await DbStore.CommitAsync("s", Offset.Sequence(1), transaction));
        Assert.Contains("atomically", ex.Message);
    }

    [Fact]
    public async Task A_finished_transaction_is_refused()
    {
        await using var connection = await DbStore.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await transaction.CommitAsync();
        await Assert.ThrowsAnyAsync<Exception>(async () => await DbStore.CommitAsync("s", Offset.Sequence(1), transaction));
        Assert.Null(await Store.GetAsync("s"));
    }

    [Fact]
    public async Task Committing_in_a_transaction_needs_the_schema_to_exist_first()
    {
        var cs = await NewDatabaseAsync("offsets_unmigrated_" + Guid.NewGuid().ToString("N")[..8]);
        await using var store = NewStore(cs);
        await using (var connection = await OpenRawAsync(cs))
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.CommitAsync("s", Offset.Sequence(1), transaction));
            Assert.Contains("MigrateAsync", ex.Message);
        }
        // Once another instance has migrated, no migration is needed from this one.
        await using (var migrator = NewStore(cs)) await migrator.MigrateAsync();
        await using (var connection = await OpenRawAsync(cs))
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await store.CommitAsync("s", Offset.Sequence(1), transaction);
            await transaction.CommitAsync();
        }
        Assert.Equal(Offset.Sequence(1), await store.GetAsync("s"));
    }
}

public sealed class SqliteOffsetStoreTests : DbOffsetStoreContractTests
{
    private readonly TempDirectory _dir = new();

    protected override Task<string> NewDatabaseAsync(string name) =>
        Task.FromResult(new SqliteConnectionStringBuilder { DataSource = _dir.File(name + ".db") }.ConnectionString);

    protected override DbOffsetStore NewStore(string connectionString, string consumer = "default") =>
        new SqliteOffsetStore(connectionString, new SqliteOffsetStoreOptions { ConsumerName = consumer });

    protected override async Task<DbConnection> OpenRawAsync(string connectionString)
    {
        var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA busy_timeout = 30000";
        await pragma.ExecuteNonQueryAsync();
        return connection;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    [Fact]
    public async Task The_database_uses_write_ahead_logging()
    {
        await using var connection = await OpenRawAsync(ConnectionString);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task ForFile_creates_the_database_file()
    {
        var path = _dir.File("direct.db");
        await using var store = SqliteOffsetStore.ForFile(path);
        await store.CommitAsync("s", Offset.Sequence(1));
        Assert.True(File.Exists(path));
        Assert.Equal(Path.GetFullPath(path), store.DataSource);
    }

    [Fact]
    public async Task A_postgres_transaction_is_refused()
    {
        await using var connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var pg = new PostgresOffsetStore("Host=127.0.0.1;Port=1;Database=none");
        var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await pg.CommitAsync("s", Offset.Sequence(1), transaction));
        Assert.Contains("NpgsqlTransaction", ex.Message);
    }
}

[Collection(PostgresServerCollection.Name)]
public sealed class PostgresOffsetStoreTests(PostgresServerFixture server) : DbOffsetStoreContractTests
{
    protected override Task<string> NewDatabaseAsync(string name) => server.CreateDatabaseAsync(name);

    protected override DbOffsetStore NewStore(string connectionString, string consumer = "default") =>
        new PostgresOffsetStore(connectionString, new PostgresOffsetStoreOptions { ConsumerName = consumer });

    protected override async Task<DbConnection> OpenRawAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    [Fact]
    public async Task Tables_can_live_in_their_own_schema()
    {
        await using var store = new PostgresOffsetStore(ConnectionString, new PostgresOffsetStoreOptions { Schema = "Offsets \"Here\"" });
        await store.CommitAsync("orders/0", Offset.Sequence(3));
        Assert.Equal(Offset.Sequence(3), await store.GetAsync("orders/0"));
        Assert.Equal(2, await store.GetSchemaVersionAsync());
        Assert.Null(await Store.GetAsync("orders/0")); // the default schema's table is another one

        await using var connection = await store.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await store.CommitAsync("orders/0", Offset.Sequence(4), transaction);
        await transaction.CommitAsync();
        Assert.Equal(Offset.Sequence(4), await store.GetAsync("orders/0"));
    }

    [Fact]
    public async Task A_store_can_use_the_applications_data_source()
    {
        await using var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await using (var store = new PostgresOffsetStore(dataSource))
            await store.CommitAsync("s", Offset.Sequence(1));
        // The caller's data source outlives the store.
        await using var connection = await dataSource.OpenConnectionAsync();
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("s"));
    }

    [Fact]
    public async Task An_unreachable_server_is_an_io_error()
    {
        await using var store = new PostgresOffsetStore("Host=127.0.0.1;Port=1;Database=none;Timeout=2");
        var ex = await Assert.ThrowsAsync<OffsetStoreIOException>(async () => await store.GetAsync("s"));
        Assert.Contains("PostgreSQL database 'none'", ex.Message);
        Assert.NotNull(ex.InnerException);
    }
}
