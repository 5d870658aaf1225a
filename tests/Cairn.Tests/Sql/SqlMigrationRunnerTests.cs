using Cairn.Sql;
using Cairn.Tests.Offsets;
using Microsoft.Data.Sqlite;

namespace Cairn.Tests.Sql;

/// <summary>The migration runner on real SQLite files (the PostgreSQL side runs through the stores' contract tests).</summary>
public sealed class SqlMigrationRunnerTests : IDisposable
{
    private readonly TempDirectory _dir = new("cairn-sql-");

    // Each step needs the one before (2 alters the table 1 creates, 3 fills the column 2 adds) and fails if run twice
    // (CREATE TABLE without IF NOT EXISTS, ADD COLUMN of an existing column), so order and idempotence show.
    private static readonly string[] Steps =
    [
        "CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY)",
        "ALTER TABLE items ADD COLUMN label TEXT",
        "INSERT INTO items (id, label) VALUES (1, 'from migration 3')",
    ];

    private static SqlSchemaHistory History(int count, params string[] replaced) =>
        new("test store", null, "test_schema", new SqlColumn("applied_ms", SqlType.Int64), 0,
            Enumerable.Range(1, count).Select(v => new SqlMigration(v, [v - 1 < replaced.Length ? replaced[v - 1] : Steps[v - 1]])).ToList());

    private SqliteDatabase Database(string name) => new(new SqliteDatabaseOptions
    {
        ConnectionString = new SqliteConnectionStringBuilder { DataSource = _dir.File(name) }.ConnectionString,
        BusyTimeout = TimeSpan.FromSeconds(30),
    });

    private async Task<List<(long Version, long AppliedMs)>> VersionsAsync(string name)
    {
        await using var db = Database(name);
        return await db.ReadAsync(async (connection, ct) =>
        {
            await using var command = SqlDatabase.Command(connection, null, "SELECT version, applied_ms FROM test_schema ORDER BY version");
            return await SqlDatabase.ReadRowsAsync(command, r => (r.GetInt64(0), r.GetInt64(1)), ct);
        }, default);
    }

    private async Task<int> ReadVersionAsync(string name, SqlSchemaHistory history)
    {
        await using var db = Database(name);
        await using var connection = await db.OpenConnectionAsync(default);
        return await SqlMigrationRunner.ReadVersionAsync(connection, null, db.Dialect, history, default);
    }

    [Fact]
    public async Task A_new_database_gets_every_migration_in_order_each_recorded_once()
    {
        await using (var db = Database("new.db"))
            Assert.Equal(0, await SqlMigrationRunner.MigrateAsync(db, History(3), null, default));
        var versions = await VersionsAsync("new.db");
        Assert.Equal([1L, 2L, 3L], versions.Select(v => v.Version));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.All(versions, v => Assert.InRange(v.AppliedMs, now - 3_600_000, now + 3_600_000)); // the database's clock, in Unix ms
        Assert.Equal(3, await ReadVersionAsync("new.db", History(3)));
    }

    [Fact]
    public async Task Migrating_again_applies_nothing()
    {
        await using (var db = Database("again.db")) await SqlMigrationRunner.MigrateAsync(db, History(3), null, default);
        var before = await VersionsAsync("again.db");
        await using (var db = Database("again.db"))
        {
            Assert.Equal(3, await SqlMigrationRunner.MigrateAsync(db, History(3), null, default));
            Assert.Equal(3, await SqlMigrationRunner.MigrateAsync(db, History(3), null, default));
        }
        Assert.Equal(before, await VersionsAsync("again.db"));
    }

    [Fact]
    public async Task An_older_database_gets_only_the_newer_migrations()
    {
        await using (var db = Database("old.db")) await SqlMigrationRunner.MigrateAsync(db, History(1), null, default);
        Assert.Equal(1, await ReadVersionAsync("old.db", History(3)));
        await using (var db = Database("old.db")) Assert.Equal(1, await SqlMigrationRunner.MigrateAsync(db, History(3), null, default));
        Assert.Equal([1L, 2L, 3L], (await VersionsAsync("old.db")).Select(v => v.Version));
        await using var check = Database("old.db");
        var label = await check.ReadAsync((c, ct) => SqlDatabase.ScalarAsync(c, null, "SELECT label FROM items WHERE id = 1", ct), default);
        Assert.Equal("from migration 3", label);
    }

    [Fact]
    public async Task A_newer_database_is_refused_and_left_as_it_is()
    {
        await using (var db = Database("newer.db")) await SqlMigrationRunner.MigrateAsync(db, History(3), null, default);
        var ex = await Assert.ThrowsAsync<SqlSchemaTooNewException>(async () =>
        {
            await using var db = Database("newer.db");
            await SqlMigrationRunner.MigrateAsync(db, History(2), null, default);
        });
        Assert.Equal(3, ex.Found);
        Assert.Equal(2, ex.Known);
        Assert.Contains("schema version 3", ex.Message);
        Assert.Contains("newer", ex.Message);
        Assert.Contains(_dir.File("newer.db"), ex.Message);
        Assert.Equal([1L, 2L, 3L], (await VersionsAsync("newer.db")).Select(v => v.Version));
    }

    [Fact]
    public async Task A_failing_migration_rolls_back_every_step_of_the_run()
    {
        await using (var db = Database("fail.db")) await SqlMigrationRunner.MigrateAsync(db, History(1), null, default);
        await using (var db = Database("fail.db"))
        {
            var broken = History(3, Steps[0], Steps[1], "INSERT INTO no_such_table VALUES (1)");
            await Assert.ThrowsAsync<SqliteException>(() => SqlMigrationRunner.MigrateAsync(db, broken, null, default));
        }
        Assert.Equal([1L], (await VersionsAsync("fail.db")).Select(v => v.Version));
        // Migration 2 was rolled back with 3: running the fixed list applies it cleanly.
        await using (var db = Database("fail.db")) Assert.Equal(1, await SqlMigrationRunner.MigrateAsync(db, History(3), null, default));
        Assert.Equal([1L, 2L, 3L], (await VersionsAsync("fail.db")).Select(v => v.Version));
    }

    [Fact]
    public async Task Concurrent_migrators_apply_each_version_once()
    {
        var databases = Enumerable.Range(0, 4).Select(_ => Database("race.db")).ToList();
        var before = await Task.WhenAll(databases.Select(db => Task.Run(() => SqlMigrationRunner.MigrateAsync(db, History(3), null, default))));
        foreach (var db in databases) await db.DisposeAsync();
        Assert.Equal(1, before.Count(v => v == 0)); // one did the work, the others found it done
        Assert.All(before.Where(v => v != 0), v => Assert.Equal(3, v));
        Assert.Equal([1L, 2L, 3L], (await VersionsAsync("race.db")).Select(v => v.Version));
    }

    [Fact]
    public void Migrations_must_be_numbered_from_one_without_gaps()
    {
        Assert.Throws<ArgumentException>(() => new SqlSchemaHistory("s", null, "v", new SqlColumn("a", SqlType.Int64), 0,
            [new SqlMigration(2, ["SELECT 1"]), new SqlMigration(1, ["SELECT 1"])]));
        Assert.Throws<ArgumentException>(() => new SqlSchemaHistory("s", null, "v", new SqlColumn("a", SqlType.Int64), 0,
            [new SqlMigration(1, ["SELECT 1"]), new SqlMigration(3, ["SELECT 1"])]));
        Assert.Equal(0, new SqlSchemaHistory("s", null, "v", new SqlColumn("a", SqlType.Int64), 0, []).Latest);
    }

    [Fact]
    public void Dialects_write_their_own_DDL()
    {
        var table = new SqlTable("t", [new("id", SqlType.Guid), new("n", SqlType.Int64, Nullable: true), new("at", SqlType.Timestamp, DefaultNow: true)], ["id"], Clustered: true);
        Assert.Equal(
            "CREATE TABLE t (id BLOB NOT NULL, n INTEGER, at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), PRIMARY KEY (id)) WITHOUT ROWID",
            SqlDialect.Sqlite.CreateTableSql(table));
        Assert.Equal(
            "CREATE TABLE IF NOT EXISTS \"my \"\"s\"\"\".t (id uuid NOT NULL, n bigint, at timestamptz NOT NULL DEFAULT (now()), PRIMARY KEY (id))",
            SqlDialect.Postgres.CreateTableSql(table, "my \"s\"", ifNotExists: true));
        Assert.Equal(
            "INSERT INTO t (k, v, at) VALUES (@k, @v, now()) ON CONFLICT (k) DO UPDATE SET v = excluded.v, at = excluded.at",
            SqlDialect.Postgres.UpsertSql("t", [("k", "@k"), ("v", "@v"), ("at", SqlDialect.Postgres.NowSql(SqlType.Timestamp))], ["k"]));
        Assert.Equal("name COLLATE \"C\"", SqlDialect.Postgres.OrdinalOrder("name"));
        Assert.Throws<NotSupportedException>(() => SqlDialect.Sqlite.QualifiedName("schema", "t"));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
