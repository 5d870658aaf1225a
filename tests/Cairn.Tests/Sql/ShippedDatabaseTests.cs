using System.Data.Common;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Offsets;
using Offset = Cairn.Offsets.Offset;

namespace Cairn.Tests.Sql;

/// <summary>
/// Databases exactly as the stores before Cairn.Sql wrote them: every DDL and INSERT statement in the subclasses is copied
/// verbatim from that code (SqliteGroupStore, PostgresGroupStore, DbOffsetStore with SqliteOffsetStore and
/// PostgresOffsetStore), values bound the way it bound them, member lists as the bytes it stored. The stores of today must
/// open such a database in place, read every group and offset back, add no schema version the database already has,
/// and keep working on it.
/// </summary>
public abstract class ShippedDatabaseTests
{
    private const string Cluster = "shipped-cluster";
    private const string OtherCluster = "other-cluster";

    /// <summary>What MemberCodec wrote for <see cref="Members"/> (and for an empty member list).</summary>
    private const string MembersBlob =
        "0102096D656D6265722D31097374617469632D3109636C69656E742D310B2F3132372E302E302E31C0A90790BF05020672616E676504000102030B726F756E64726F62696E" +
        "0003090807096D656D6265722D320009636C69656E742D320B2F3132372E302E302E31E0D403A09C01010672616E676502040500";
    private const string NoMembersBlob = "0100";

    private static readonly StoredMember[] Members =
    [
        new("member-1", "static-1", "client-1", "/127.0.0.1", 60000, 45000, [new("range", [0, 1, 2, 3]), new("roundrobin", [])], [9, 8, 7]),
        new("member-2", null, "client-2", "/127.0.0.1", 30000, 10000, [new("range", [4, 5])], []),
    ];

    private static readonly Guid TopicA = new("6d2b3b8e-4a1f-4f9e-9c59-1b0f0d5d9a01");
    private static readonly Guid TopicB = new("0a5f4c7e-92e3-4e21-8f1b-7c3c2e6f4b02");
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);

    private static readonly (StoredGroup Group, byte[] Blob)[] Groups =
    [
        (new StoredGroup("stable", "consumer", "range", 7, "member-1", null, Members), Convert.FromHexString(MembersBlob)),
        (new StoredGroup("empty", "consumer", null, 3, null, T0, []), Convert.FromHexString(NoMembersBlob)),
        (new StoredGroup("Ünïcode group 🙂", null, null, 0, null, T0.AddDays(-2), []), Convert.FromHexString(NoMembersBlob)),
    ];

    private static readonly GroupOffsetCommit[] Commits =
    [
        new("stable", [Committed("orders", TopicA, 0, 42, 5, "meta"), Committed("orders", TopicA, 1, 0, -1, null), Committed("payments", TopicB, 0, long.MaxValue, 0, "")]),
        new("empty", [Committed("orders", TopicA, 2, 7, 1, null)]),
        new("standalone", [Committed("orders", TopicA, 0, 99, -1, "no group row")]),
    ];

    private static readonly (string Consumer, string Source, string Offset)[] OffsetRows =
    [
        ("default", "orders/0", "seq:77"),
        ("default", "ü/漢字/🙂", "custom:lsn=0/16B3748; \"quoted\""),
        ("default", "clock", "ts:2026-11-20T10:00:00.0000000+00:00"),
        ("other-consumer", "orders/0", "earliest"),
    ];

    private static CommittedOffset Committed(string topic, Guid id, int partition, long offset, int epoch, string? metadata) =>
        new(topic, id, partition, offset, epoch, metadata, T0.AddMinutes(partition));

    /// <summary>A fresh, empty database: its location for the group store and its connection string for the offsets store.</summary>
    private protected abstract Task<(string Location, string ConnectionString)> NewDatabaseAsync();

    private protected abstract Task<DbConnection> OpenRawAsync(string connectionString);

    /// <summary>The shipped group store's migration transaction up to <paramref name="version"/>.</summary>
    private protected abstract Task CreateShippedGroupSchemaAsync(DbConnection connection, int version);

    /// <summary>The shipped SaveGroupAsync and offset-commit statements.</summary>
    private protected abstract Task InsertShippedGroupAsync(DbConnection connection, string cluster, StoredGroup group, byte[] members);

    private protected abstract Task InsertShippedOffsetAsync(DbConnection connection, string cluster, string group, CommittedOffset offset);

    /// <summary>The shipped offsets store's BeginMigrationAsync: the migration transaction with its lock taken.</summary>
    private protected abstract Task<DbTransaction> BeginShippedOffsetsMigrationAsync(DbConnection connection);

    /// <summary>The shipped offsets store's migrations (its newest schema was version 2).</summary>
    private protected abstract string[] ShippedOffsetsMigrations { get; }

    /// <summary>The shipped offsets store's CommitAsync statement.</summary>

    private protected abstract Task InsertShippedOffsetRowAsync(DbConnection connection, string consumer, string source, string offset);

    private protected abstract IGroupStore OpenGroupStore(string location, string cluster);

    private protected abstract DbOffsetStore OpenOffsetStore(string connectionString, string consumer);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_shipped_group_database_is_migrated_in_place_and_read_back(int shippedVersion)
    {
        var (location, connectionString) = await NewDatabaseAsync();
        await using (var connection = await OpenRawAsync(connectionString))
        {
            await CreateShippedGroupSchemaAsync(connection, shippedVersion);
            foreach (var (group, blob) in Groups)
            {
                await InsertShippedGroupAsync(connection, Cluster, group, blob);
                await InsertShippedGroupAsync(connection, OtherCluster, group with { Generation = 1000 }, blob);
            }
            foreach (var commit in Commits)
            {
                foreach (var offset in commit.Offsets)
                {
                    await InsertShippedOffsetAsync(connection, Cluster, commit.GroupId, offset);
                    await InsertShippedOffsetAsync(connection, OtherCluster, commit.GroupId, offset with { Offset = 1 });
                }
            }
        }
        Assert.Equal(Convert.FromHexString(MembersBlob), MemberCodec.Encode(Members)); // the fixture is what the codec writes

        await using (var store = OpenGroupStore(location, Cluster))
        {
            await store.InitializeAsync();
            var groups = (await store.GetGroupsAsync()).ToDictionary(g => g.GroupId, StringComparer.Ordinal);
            Assert.Equal(Groups.Length, groups.Count);
            foreach (var (expected, _) in Groups) AssertGroup(expected, groups[expected.GroupId]);

            var offsets = await store.GetAllOffsetsAsync();
            Assert.Equal(Commits.Select(c => c.GroupId).Order(StringComparer.Ordinal), offsets.Keys.Order(StringComparer.Ordinal));
            foreach (var commit in Commits)
            {
                Assert.Equal(
                    commit.Offsets.OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition),
                    offsets[commit.GroupId].OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition));
            }

            // It keeps working on the migrated database.
            await store.CommitOffsetsAsync([new("stable", [Committed("orders", TopicA, 0, 43, 5, "after")])]);
            await store.DeleteTopicOffsetsAsync("payments");
            var after = (await store.GetAllOffsetsAsync())["stable"];
            Assert.Equal([43L, 0L], after.OrderBy(o => o.Partition).Select(o => o.Offset));
            await store.SaveGroupAsync(Groups[0].Group with { Generation = 8 });
            await store.DeleteGroupAsync("empty");
            Assert.Equal(["stable", "Ünïcode group 🙂"], (await store.GetGroupsAsync()).Select(g => g.GroupId));
            Assert.Equal(8, (await store.GetGroupsAsync())[0].Generation);
            Assert.False((await store.GetAllOffsetsAsync()).ContainsKey("empty"));
        }
        await using (var connection = await OpenRawAsync(connectionString))
            Assert.Equal(Enumerable.Range(1, SqlGroupStore.SchemaVersion), await ColumnAsync<int>(connection, "SELECT version FROM schema_version ORDER BY version"));

        // The other cluster's rows were neither read nor touched.
        await using var other = OpenGroupStore(location, OtherCluster);
        await other.InitializeAsync();
        Assert.All(await other.GetGroupsAsync(), g => Assert.Equal(1000, g.Generation));
        Assert.All((await other.GetAllOffsetsAsync()).Values.SelectMany(o => o), o => Assert.Equal(1, o.Offset));
    }

    [Fact]
    public async Task A_shipped_offsets_database_is_opened_in_place_and_read_back()
    {
        var (_, connectionString) = await NewDatabaseAsync();
        await using (var connection = await OpenRawAsync(connectionString))
        {
            // DbOffsetStore.MigrateCoreAsync as shipped (one code path for both engines).
            await using (var tx = await BeginShippedOffsetsMigrationAsync(connection))
            {
                await ExecAsync(connection, tx, "CREATE TABLE IF NOT EXISTS cairn_offsets_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
                for (var v = 1; v <= ShippedOffsetsMigrations.Length; v++)
                {
                    await ExecAsync(connection, tx, ShippedOffsetsMigrations[v - 1]);
                    await using var record = connection.CreateCommand();
                    record.Transaction = tx;
                    record.CommandText = "INSERT INTO cairn_offsets_schema (version, applied_at) VALUES (@version, @applied_at)";
                    foreach (var (name, value) in new (string, object)[] { ("version", v), ("applied_at", DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture)) })
                    {
                        var parameter = record.CreateParameter();
                        parameter.ParameterName = name;
                        parameter.Value = value;
                        record.Parameters.Add(parameter);
                    }
                    await record.ExecuteNonQueryAsync();
                }
                await tx.CommitAsync();
            }
            foreach (var (consumer, source, offset) in OffsetRows) await InsertShippedOffsetRowAsync(connection, consumer, source, offset);
        }

        foreach (var consumer in OffsetRows.Select(r => r.Consumer).Distinct())
        {
            await using var store = OpenOffsetStore(connectionString, consumer);
            await store.MigrateAsync();
            Assert.Equal(2, await store.GetSchemaVersionAsync());
            var expected = OffsetRows.Where(r => r.Consumer == consumer).ToDictionary(r => r.Source, r => Offset.Parse(r.Offset));
            Assert.Equal(expected.OrderBy(e => e.Key, StringComparer.Ordinal), (await store.GetAllAsync()).OrderBy(e => e.Key, StringComparer.Ordinal));
            foreach (var (source, offset) in expected) Assert.Equal(offset, await store.GetAsync(source));
        }

        await using (var store = OpenOffsetStore(connectionString, "default"))
        {
            await store.CommitAsync("orders/0", Offset.Sequence(78));
            Assert.Equal(Offset.Sequence(78), await store.GetAsync("orders/0"));
        }
        await using var check = await OpenRawAsync(connectionString);
        Assert.Equal([1, 2], await ColumnAsync<int>(check, "SELECT version FROM cairn_offsets_schema ORDER BY version"));
    }

    private static void AssertGroup(StoredGroup expected, StoredGroup actual)
    {
        Assert.Equal((expected.GroupId, expected.ProtocolType, expected.Protocol, expected.Generation, expected.Leader, expected.EmptySince),
            (actual.GroupId, actual.ProtocolType, actual.Protocol, actual.Generation, actual.Leader, actual.EmptySince));
        Assert.Equal(expected.Members.Count, actual.Members.Count);
        for (var i = 0; i < expected.Members.Count; i++)
        {
            var (e, a) = (expected.Members[i], actual.Members[i]);
            Assert.Equal((e.MemberId, e.GroupInstanceId, e.ClientId, e.ClientHost, e.RebalanceTimeoutMs, e.SessionTimeoutMs),
                (a.MemberId, a.GroupInstanceId, a.ClientId, a.ClientHost, a.RebalanceTimeoutMs, a.SessionTimeoutMs));
            Assert.Equal(e.Assignment, a.Assignment);
            Assert.Equal(e.Protocols.Select(p => (p.Name, Convert.ToHexString(p.Metadata))), a.Protocols.Select(p => (p.Name, Convert.ToHexString(p.Metadata))));
        }
    }

    private static async Task<List<T>> ColumnAsync<T>(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<T>();
        while (await reader.ReadAsync()) values.Add(reader.GetFieldValue<T>(0));
        return values;
    }

    private protected static async Task ExecAsync(DbConnection connection, DbTransaction? transaction, string sql, params object?[] values)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var value in values)
        {
            if (value is DbParameter parameter) command.Parameters.Add(parameter);
            else throw new ArgumentException("bind values as the shipped code did: a typed parameter each");
        }
        await command.ExecuteNonQueryAsync();
    }
}
