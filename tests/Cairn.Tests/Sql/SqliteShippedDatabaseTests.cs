using System.Data.Common;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Offsets;
using Cairn.Tests.Offsets;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Sql;

/// <summary><see cref="ShippedDatabaseTests"/> on SQLite files: the statements of the SQLite stores as shipped.</summary>
public sealed class SqliteShippedDatabaseTests : ShippedDatabaseTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    private protected override Task<(string Location, string ConnectionString)> NewDatabaseAsync()
    {
        var path = _dir.File(Guid.NewGuid().ToString("N") + ".db");
        return Task.FromResult((path, new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ConnectionString));
    }

    private protected override async Task<DbConnection> OpenRawAsync(string connectionString)
    {
        SQLitePCL.Batteries_V2.Init();
        var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    private protected override async Task CreateShippedGroupSchemaAsync(DbConnection connection, int version)
    {
        // SqliteGroupStore.InitializeAsync and Migrate, as shipped.
        await ExecAsync(connection, null, "PRAGMA journal_mode = WAL;");
        await using var tx = ((SqliteConnection)connection).BeginTransaction(deferred: false);
        await ExecAsync(connection, tx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ms INTEGER NOT NULL);");
        string[] migrations =
        [
            """
            CREATE TABLE group_offsets (
                cluster_id       TEXT    NOT NULL,
                group_id         TEXT    NOT NULL,
                topic_id         BLOB    NOT NULL,
                partition        INTEGER NOT NULL,
                topic            TEXT    NOT NULL,
                committed_offset INTEGER NOT NULL,
                leader_epoch     INTEGER NOT NULL,
                metadata         TEXT,
                commit_time_ms   INTEGER NOT NULL,
                PRIMARY KEY (cluster_id, group_id, topic_id, partition)
            ) WITHOUT ROWID;
            CREATE TABLE consumer_groups (
                cluster_id     TEXT    NOT NULL,
                group_id       TEXT    NOT NULL,
                protocol_type  TEXT,
                protocol       TEXT,
                generation     INTEGER NOT NULL,
                leader         TEXT,
                empty_since_ms INTEGER,
                members        BLOB    NOT NULL,
                updated_ms     INTEGER NOT NULL,
                PRIMARY KEY (cluster_id, group_id)
            ) WITHOUT ROWID;
            """,
            "CREATE INDEX group_offsets_by_topic ON group_offsets (cluster_id, topic);",
        ];
        for (var v = 1; v <= version; v++)
        {
            await ExecAsync(connection, tx, migrations[v - 1]);
            await ExecAsync(connection, tx, "INSERT INTO schema_version (version, applied_ms) VALUES ($v, $t);",
                new SqliteParameter("$v", v), new SqliteParameter("$t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        }
        await tx.CommitAsync();
    }

    private protected override Task InsertShippedGroupAsync(DbConnection connection, string cluster, StoredGroup group, byte[] members) =>
        ExecAsync(connection, null, """
            INSERT INTO consumer_groups (cluster_id, group_id, protocol_type, protocol, generation, leader, empty_since_ms, members, updated_ms)
            VALUES ($cluster, $group, $protocol_type, $protocol, $generation, $leader, $empty_since, $members, $updated)
            ON CONFLICT (cluster_id, group_id) DO UPDATE SET
                protocol_type = excluded.protocol_type, protocol = excluded.protocol, generation = excluded.generation,
                leader = excluded.leader, empty_since_ms = excluded.empty_since_ms, members = excluded.members,
                updated_ms = excluded.updated_ms;
            """,
            new SqliteParameter("$cluster", cluster), new SqliteParameter("$group", group.GroupId),
            new SqliteParameter("$protocol_type", (object?)group.ProtocolType ?? DBNull.Value), new SqliteParameter("$protocol", (object?)group.Protocol ?? DBNull.Value),
            new SqliteParameter("$generation", group.Generation), new SqliteParameter("$leader", (object?)group.Leader ?? DBNull.Value),
            new SqliteParameter("$empty_since", group.EmptySince is { } t ? t.ToUnixTimeMilliseconds() : DBNull.Value),
            new SqliteParameter("$members", SqliteType.Blob) { Value = members },
            new SqliteParameter("$updated", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));

    private protected override Task InsertShippedOffsetAsync(DbConnection connection, string cluster, string group, CommittedOffset o)
    {
        var topicId = new byte[16];
        o.TopicId.TryWriteBytes(topicId);
        return ExecAsync(connection, null, """
            INSERT INTO group_offsets (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, commit_time_ms)
            VALUES ($cluster, $group, $topic_id, $partition, $topic, $offset, $epoch, $metadata, $time)
            ON CONFLICT (cluster_id, group_id, topic_id, partition) DO UPDATE SET
                topic = excluded.topic, committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
                metadata = excluded.metadata, commit_time_ms = excluded.commit_time_ms
            """,
            new SqliteParameter("$cluster", SqliteType.Text) { Value = cluster }, new SqliteParameter("$group", SqliteType.Text) { Value = group },
            new SqliteParameter("$topic_id", SqliteType.Blob) { Value = topicId }, new SqliteParameter("$partition", SqliteType.Integer) { Value = o.Partition },
            new SqliteParameter("$topic", SqliteType.Text) { Value = o.Topic }, new SqliteParameter("$offset", SqliteType.Integer) { Value = o.Offset },
            new SqliteParameter("$epoch", SqliteType.Integer) { Value = o.LeaderEpoch },
            new SqliteParameter("$metadata", SqliteType.Text) { Value = (object?)o.Metadata ?? DBNull.Value },
            new SqliteParameter("$time", SqliteType.Integer) { Value = o.CommitTime.ToUnixTimeMilliseconds() });
    }

    private protected override async Task<DbTransaction> BeginShippedOffsetsMigrationAsync(DbConnection connection)
    {
        await ExecAsync(connection, null, "PRAGMA journal_mode = WAL");
        return ((SqliteConnection)connection).BeginTransaction(deferred: false);
    }

    private protected override string[] ShippedOffsetsMigrations =>
    [
        "CREATE TABLE cairn_offsets (consumer TEXT NOT NULL, source TEXT NOT NULL, offset_value TEXT NOT NULL, PRIMARY KEY (consumer, source))",
        "ALTER TABLE cairn_offsets ADD COLUMN committed_at TEXT",
    ];

    private protected override Task InsertShippedOffsetRowAsync(DbConnection connection, string consumer, string source, string offset) =>
        ExecAsync(connection, null,
            "INSERT INTO cairn_offsets (consumer, source, offset_value, committed_at) " +
            "VALUES (@consumer, @source, @offset, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) " +
            "ON CONFLICT (consumer, source) DO UPDATE SET offset_value = excluded.offset_value, committed_at = excluded.committed_at",
            new SqliteParameter("consumer", consumer), new SqliteParameter("source", source), new SqliteParameter("offset", offset));

    private protected override IGroupStore OpenGroupStore(string location, string cluster) => new SqliteGroupStore(cluster, location, NullLogger.Instance);

    private protected override DbOffsetStore OpenOffsetStore(string connectionString, string consumer) =>
        new SqliteOffsetStore(connectionString, new SqliteOffsetStoreOptions { ConsumerName = consumer });

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
