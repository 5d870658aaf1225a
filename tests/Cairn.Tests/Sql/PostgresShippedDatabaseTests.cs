using System.Data.Common;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Offsets;
using Cairn.Tests.Groups.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Cairn.Tests.Sql;

/// <summary><see cref="ShippedDatabaseTests"/> on a throw-away PostgreSQL server: the statements of the PostgreSQL stores as shipped.</summary>
[Collection(PostgresServerCollection.Name)]
public sealed class PostgresShippedDatabaseTests(PostgresServerFixture server) : ShippedDatabaseTests
{
    private static int _counter;

    private protected override async Task<(string Location, string ConnectionString)> NewDatabaseAsync()
    {
        var connectionString = await server.CreateDatabaseAsync($"shipped_{Environment.ProcessId}_{Interlocked.Increment(ref _counter)}");
        return (connectionString, connectionString);
    }

    private protected override async Task<DbConnection> OpenRawAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    private protected override async Task CreateShippedGroupSchemaAsync(DbConnection connection, int version)
    {
        // PostgresGroupStore.MigrateAsync, as shipped.
        await using var tx = await connection.BeginTransactionAsync();
        await ExecAsync(connection, tx, "SELECT pg_advisory_xact_lock($1)", new NpgsqlParameter<long> { TypedValue = PostgresGroupStore.MigrationLockKey });
        await ExecAsync(connection, tx, """
            CREATE TABLE IF NOT EXISTS schema_version (
                version    integer     PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """);
        string[] migrations =
        [
            """
            CREATE TABLE group_offsets (
                cluster_id       text    NOT NULL,
                group_id         text    NOT NULL,
                topic_id         uuid    NOT NULL,
                partition        integer NOT NULL,
                topic            text    NOT NULL,
                committed_offset bigint  NOT NULL,
                leader_epoch     integer NOT NULL,
                metadata         text,
                commit_time_ms   bigint  NOT NULL,
                PRIMARY KEY (cluster_id, group_id, topic_id, partition)
            );
            CREATE TABLE consumer_groups (
                cluster_id     text        NOT NULL,
                group_id       text        NOT NULL,
                protocol_type  text,
                protocol       text,
                generation     integer     NOT NULL,
                leader         text,
                empty_since_ms bigint,
                members        bytea       NOT NULL,
                updated_at     timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (cluster_id, group_id)
            );
            """,
            "CREATE INDEX group_offsets_by_topic ON group_offsets (cluster_id, topic);",
        ];
        for (var v = 1; v <= version; v++)
        {
            await ExecAsync(connection, tx, migrations[v - 1]);
            await ExecAsync(connection, tx, "INSERT INTO schema_version (version) VALUES ($1)", new NpgsqlParameter<int> { TypedValue = v });
        }
        await tx.CommitAsync();
    }

    private protected override Task InsertShippedGroupAsync(DbConnection connection, string cluster, StoredGroup group, byte[] members) =>
        ExecAsync(connection, null, """
            INSERT INTO consumer_groups (cluster_id, group_id, protocol_type, protocol, generation, leader, empty_since_ms, members, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
            ON CONFLICT (cluster_id, group_id) DO UPDATE SET
                protocol_type = EXCLUDED.protocol_type, protocol = EXCLUDED.protocol, generation = EXCLUDED.generation,
                leader = EXCLUDED.leader, empty_since_ms = EXCLUDED.empty_since_ms, members = EXCLUDED.members,
                updated_at = EXCLUDED.updated_at
            """,
            new NpgsqlParameter<string> { TypedValue = cluster }, new NpgsqlParameter<string> { TypedValue = group.GroupId },
            new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)group.ProtocolType ?? DBNull.Value },
            new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)group.Protocol ?? DBNull.Value },
            new NpgsqlParameter<int> { TypedValue = group.Generation },
            new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)group.Leader ?? DBNull.Value },
            new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = group.EmptySince is { } t ? t.ToUnixTimeMilliseconds() : DBNull.Value },
            new NpgsqlParameter<byte[]> { NpgsqlDbType = NpgsqlDbType.Bytea, TypedValue = members });

    private protected override Task InsertShippedOffsetAsync(DbConnection connection, string cluster, string group, CommittedOffset o) =>
        ExecAsync(connection, null, """
            INSERT INTO group_offsets AS o (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, commit_time_ms)
            SELECT $1, u.g, u.tid, u.p, u.t, u.o, u.e, u.m, u.ts
            FROM unnest($2::text[], $3::uuid[], $4::integer[], $5::text[], $6::bigint[], $7::integer[], $8::text[], $9::bigint[])
                AS u(g, tid, p, t, o, e, m, ts)
            ON CONFLICT (cluster_id, group_id, topic_id, partition) DO UPDATE SET
                topic = EXCLUDED.topic, committed_offset = EXCLUDED.committed_offset, leader_epoch = EXCLUDED.leader_epoch,
                metadata = EXCLUDED.metadata, commit_time_ms = EXCLUDED.commit_time_ms
            """,
            new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = cluster },
            new NpgsqlParameter<List<string>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = [group] },
            new NpgsqlParameter<List<Guid>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid, TypedValue = [o.TopicId] },
            new NpgsqlParameter<List<int>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, TypedValue = [o.Partition] },
            new NpgsqlParameter<List<string>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = [o.Topic] },
            new NpgsqlParameter<List<long>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = [o.Offset] },
            new NpgsqlParameter<List<int>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, TypedValue = [o.LeaderEpoch] },
            new NpgsqlParameter<List<string?>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = [o.Metadata] },
            new NpgsqlParameter<List<long>> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = [o.CommitTime.ToUnixTimeMilliseconds()] });

    private protected override async Task<DbTransaction> BeginShippedOffsetsMigrationAsync(DbConnection connection)
    {
        var tx = await connection.BeginTransactionAsync();
        await ExecAsync(connection, tx, $"SELECT pg_advisory_xact_lock({0x636169726e6f6666})");
        return tx;
    }

    private protected override string[] ShippedOffsetsMigrations =>
    [
        "CREATE TABLE cairn_offsets (consumer TEXT NOT NULL, source TEXT NOT NULL, offset_value TEXT NOT NULL, PRIMARY KEY (consumer, source))",
        "ALTER TABLE cairn_offsets ADD COLUMN committed_at TIMESTAMPTZ",
    ];

    private protected override Task InsertShippedOffsetRowAsync(DbConnection connection, string consumer, string source, string offset) =>
        ExecAsync(connection, null,
            "INSERT INTO cairn_offsets (consumer, source, offset_value, committed_at) VALUES (@consumer, @source, @offset, now()) " +
            "ON CONFLICT (consumer, source) DO UPDATE SET offset_value = EXCLUDED.offset_value, committed_at = EXCLUDED.committed_at",
            new NpgsqlParameter("consumer", consumer), new NpgsqlParameter("source", source), new NpgsqlParameter("offset", offset));

    private protected override IGroupStore OpenGroupStore(string location, string cluster) => new PostgresGroupStore(cluster, location, NullLogger.Instance);

    private protected override DbOffsetStore OpenOffsetStore(string connectionString, string consumer) =>
        new PostgresOffsetStore(connectionString, new PostgresOffsetStoreOptions { ConsumerName = consumer });
}
