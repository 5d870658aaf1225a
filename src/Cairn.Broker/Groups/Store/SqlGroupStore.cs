using System.Data.Common;
using Cairn.Sql;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups.Store;

/// <summary>
/// <see cref="IGroupStore"/> on a SQL database (Cairn.Sql): the schema and its migrations, reads, deletes and group
/// metadata, the same for every engine. Offset commits go through a group-commit loop: commits that arrive while a
/// transaction is in flight are written together in the next one; how a batch is written is the one thing each engine
/// does its own way (<see cref="SqliteGroupStore"/>, <see cref="PostgresGroupStore"/>).
/// </summary>
internal abstract class SqlGroupStore : IGroupStore
{
    private const string Offsets = "group_offsets";
    private const string Groups = "consumer_groups";
    private const string Meta = "group_store_meta";

    /// <summary>The <see cref="Meta"/> row counting write transactions (see <see cref="CountsWrites"/>).</summary>
    private const string WriteSequenceRow = "write_sequence";

    /// <summary>Offset columns in the order <see cref="ReadOffset"/> reads them.</summary>
    private const string OffsetColumns = "topic, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time_ms";

    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly SqlSchemaHistory _history;
    private readonly string _upsertGroupSql;
    private readonly string _bumpSequenceSql;
    private long _writeSequence;
    private CommitBatcher<IReadOnlyList<GroupOffsetCommit>>? _batcher;
    private volatile bool _initialized;
    private volatile bool _disposed;

    private protected SqlGroupStore(SqlDatabase database, string clusterId, ILogger logger, int maxBatchOffsets, long migrationLockKey)
    {
        GroupStoreValidation.ClusterId(clusterId);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchOffsets, 1);
        Database = database;
        ClusterId = clusterId;
        Logger = logger;
        MaxBatchOffsets = maxBatchOffsets;
        var d = database.Dialect;
        _history = History(d, migrationLockKey);
        var updated = TimeColumn(d, "updated");
        _upsertGroupSql = d.UpsertSql(Groups,
        [
            ("cluster_id", d.Parameter("cluster")), ("group_id", d.Parameter("group")), ("protocol_type", d.Parameter("protocol_type")),
            ("protocol", d.Parameter("protocol")), ("generation", d.Parameter("generation")), ("leader", d.Parameter("leader")),
            ("empty_since_ms", d.Parameter("empty_since")), ("members", d.Parameter("members")), (updated.Name, d.NowSql(updated.Type)),
        ], ["cluster_id", "group_id"]);
        _bumpSequenceSql = $"UPDATE {Meta} SET value = value + 1 WHERE name = '{WriteSequenceRow}' RETURNING value";
    }

    /// <summary>Newest schema version this build knows.</summary>
    public static int SchemaVersion => Migrations(SqlDialect.Sqlite).Count;

    public string ClusterId { get; }

    private protected SqlDatabase Database { get; }

    private protected ILogger Logger { get; }

    private protected int MaxBatchOffsets { get; }

    /// <summary>Commit transactions run so far (for diagnostics and tests of group commit).</summary>
    internal long CommitTransactions => _batcher?.Transactions ?? 0;

    /// <summary>
    /// Whether every write transaction also bumps the database's write sequence (<see cref="WriteSequence"/>). SQLite does:
    /// its store compares the sequence with a record kept outside the database to notice a database rolled back to an
    /// older state (a damaged write-ahead log). PostgreSQL does not: the server guarantees durability, and the counter
    /// would be one row every commit of every broker updates.
    /// </summary>
    private protected virtual bool CountsWrites => false;

    /// <summary>The newest write sequence committed to the database (read at start-up, then raised by each counted write
    /// once it has committed); 0 when the store does not count writes.</summary>
    internal long WriteSequence => Interlocked.Read(ref _writeSequence);

    /// <summary>An integrity problem found at start-up and accepted (offset.store.accept.loss); null when none.</summary>
    public GroupStoreProblem? IntegrityProblem { get; private protected set; }

    /// <summary>
    /// The shipped schema. SQLite and PostgreSQL differ in one place: a row's "when" column is Unix milliseconds named
    /// <c>*_ms</c> in SQLite and a timestamptz named <c>*_at</c> in PostgreSQL; kept so existing databases stay valid.
    /// </summary>
    private static IReadOnlyList<SqlMigration> Migrations(SqlDialect d) =>
    [
        new(1,
        [
            d.CreateTableSql(new SqlTable(Offsets,
            [
                new("cluster_id", SqlType.Text), new("group_id", SqlType.Text), new("topic_id", SqlType.Guid), new("partition", SqlType.Int32),
                new("topic", SqlType.Text), new("committed_offset", SqlType.Int64), new("leader_epoch", SqlType.Int32),
                new("metadata", SqlType.Text, Nullable: true), new("commit_time_ms", SqlType.Int64),
            ], ["cluster_id", "group_id", "topic_id", "partition"], Clustered: true)),
            d.CreateTableSql(new SqlTable(Groups,
            [
                new("cluster_id", SqlType.Text), new("group_id", SqlType.Text), new("protocol_type", SqlType.Text, Nullable: true),
                new("protocol", SqlType.Text, Nullable: true), new("generation", SqlType.Int32), new("leader", SqlType.Text, Nullable: true),
                new("empty_since_ms", SqlType.Int64, Nullable: true), new("members", SqlType.Bytes), TimeColumn(d, "updated"),
            ], ["cluster_id", "group_id"], Clustered: true)),
        ]),
        new(2, [d.CreateIndexSql(null, "group_offsets_by_topic", Offsets, "cluster_id", "topic")]),
        // Named counters of the whole database (not per cluster: they describe the file). write_sequence only grows, so
        // a lower value than one recorded earlier means writes were lost, while deleted rows do not lower it.
        new(3,
        [
            d.CreateTableSql(new SqlTable(Meta, [new("name", SqlType.Text), new("value", SqlType.Int64)], ["name"])),
            $"INSERT INTO {Meta} (name, value) VALUES ('{WriteSequenceRow}', 0)",
        ]),
    ];

    private static SqlSchemaHistory History(SqlDialect d, long lockKey) =>
        new("group store", null, "schema_version", TimeColumn(d, "applied"), lockKey, Migrations(d));

    private static SqlColumn TimeColumn(SqlDialect d, string stem) => d == SqlDialect.Sqlite
        ? new SqlColumn(stem + "_ms", SqlType.Int64)
        : new SqlColumn(stem + "_at", SqlType.Timestamp, DefaultNow: true);

    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await _initLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized) return;
            await BeforeMigrateAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await SqlMigrationRunner.MigrateAsync(Database, _history, Logger, cancellationToken).ConfigureAwait(false);
            }
            catch (SqlSchemaTooNewException ex)
            {
                throw GroupStoreSchema.Newer(Database.Dialect.Name, Database.Location, ex.Found, ex.Known);
            }
            if (CountsWrites) Interlocked.Exchange(ref _writeSequence, await ReadWriteSequenceAsync(cancellationToken).ConfigureAwait(false));
            await AfterMigrateAsync(cancellationToken).ConfigureAwait(false);
            _batcher = new CommitBatcher<IReadOnlyList<GroupOffsetCommit>>(WriteCommitBatchAsync, Logger, MaxBatchOffsets, "group offset commit");
            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }
    }

    public Task CommitOffsetsAsync(IReadOnlyList<GroupOffsetCommit> commits, CancellationToken cancellationToken = default)
    {
        var count = GroupStoreValidation.Commits(commits);
        ThrowIfNotReady();
        if (count == 0) return cancellationToken.IsCancellationRequested ? Task.FromCanceled(cancellationToken) : Task.CompletedTask;
        return _batcher!.EnqueueAsync(commits, count, cancellationToken);
    }

    /// <summary>Writes every commit of the batch in one transaction (later commits of a partition win); throws if it did not commit.</summary>
    private protected abstract ValueTask WriteCommitBatchAsync(List<PendingCommit<IReadOnlyList<GroupOffsetCommit>>> batch);

    /// <summary>Runs before the schema is migrated, on a database nothing has written to yet (SQLite: the integrity and lost-writes checks).</summary>
    private protected virtual Task BeforeMigrateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs once the schema is current and <see cref="WriteSequence"/> is read (SQLite: starts the write record).</summary>
    private protected virtual Task AfterMigrateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// <see cref="SqlDatabase.WriteAsync"/> for every write of the store. When the store <see cref="CountsWrites"/>, the
    /// write runs in a transaction that also bumps the write sequence, and the new value is published only once that
    /// transaction has committed, so nothing outside the database ever records a sequence the database may not have.
    /// </summary>
    private protected async Task WriteAsync(Func<DbConnection, DbTransaction?, CancellationToken, Task> write, bool transaction, CancellationToken cancellationToken)
    {
        if (!CountsWrites)
        {
            await Database.WriteAsync(write, transaction, cancellationToken).ConfigureAwait(false);
            return;
        }
        long sequence = 0;
        await Database.WriteAsync(async (connection, tx, ct) =>
        {
            await write(connection, tx, ct).ConfigureAwait(false);
            sequence = Convert.ToInt64(await SqlDatabase.ScalarAsync(connection, tx, _bumpSequenceSql, ct).ConfigureAwait(false)
                ?? throw new InvalidDataException($"{Database.Dialect.Name} group store {Database.Location}: the {WriteSequenceRow} row of {Meta} is missing"),
                System.Globalization.CultureInfo.InvariantCulture);
        }, transaction: true, cancellationToken).ConfigureAwait(false);
        long current;
        do current = Interlocked.Read(ref _writeSequence);
        while (sequence > current && Interlocked.CompareExchange(ref _writeSequence, sequence, current) != current);
    }

    private Task<long> ReadWriteSequenceAsync(CancellationToken cancellationToken) =>
        Database.ReadAsync((connection, ct) => SelectWriteSequenceAsync(connection, ct), cancellationToken);

    /// <summary>
    /// The write sequence as the database has it before any migration: 0 when it has no counter yet (a new or older
    /// database). Read through the writer, which runs SQLite's log recovery, and without writing anything, so a store
    /// that then refuses to start leaves the files as it found them.
    /// </summary>
    private protected async Task<long> ReadWriteSequenceBeforeMigrationAsync(CancellationToken cancellationToken)
    {
        long sequence = 0;
        await Database.WriteAsync(async (connection, _, ct) =>
        {
            var exists = await SqlDatabase.ScalarAsync(connection, null, Database.Dialect.TableExistsSql(null, Meta), ct).ConfigureAwait(false);
            if (exists is true || (exists is not null and not bool && Convert.ToInt64(exists, System.Globalization.CultureInfo.InvariantCulture) != 0))
                sequence = await SelectWriteSequenceAsync(connection, ct).ConfigureAwait(false);
        }, transaction: false, cancellationToken).ConfigureAwait(false);
        return sequence;
    }

    private static async Task<long> SelectWriteSequenceAsync(DbConnection connection, CancellationToken cancellationToken) => Convert.ToInt64(
        await SqlDatabase.ScalarAsync(connection, null, $"SELECT value FROM {Meta} WHERE name = '{WriteSequenceRow}'", cancellationToken).ConfigureAwait(false) ?? 0L,
        System.Globalization.CultureInfo.InvariantCulture);

    public Task<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>> GetAllOffsetsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        var d = Database.Dialect;
        var sql = $"SELECT group_id, {OffsetColumns} FROM {Offsets} WHERE cluster_id = {d.Parameter("cluster")} " +
                  $"ORDER BY {d.OrdinalOrder("group_id")}, {d.OrdinalOrder("topic")}, partition, topic_id";
        return Database.ReadAsync<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>>(async (connection, ct) =>
        {
            await using var command = SqlDatabase.Command(connection, null, sql, ("cluster", ClusterId));
            var rows = await SqlDatabase.ReadRowsAsync(command, r => (Group: r.GetString(0), Offset: ReadOffset(r, 1)), ct).ConfigureAwait(false);
            var result = new Dictionary<string, IReadOnlyList<CommittedOffset>>(StringComparer.Ordinal);
            foreach (var (group, offsets) in rows.GroupBy(r => r.Group, StringComparer.Ordinal).Select(g => (g.Key, g.Select(r => r.Offset).ToList())))
                result[group] = offsets;
            return result;
        }, cancellationToken);
    }

    public Task DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        GroupStoreValidation.Partitions(partitions);
        ThrowIfNotReady();
        if (partitions.Count == 0) return Task.CompletedTask;
        var d = Database.Dialect;
        var sql = $"DELETE FROM {Offsets} WHERE cluster_id = {d.Parameter("cluster")} AND group_id = {d.Parameter("group")} " +
                  $"AND topic = {d.Parameter("topic")} AND partition = {d.Parameter("partition")}";
        return WriteAsync(async (connection, tx, ct) =>
        {
            await using var command = SqlDatabase.Command(connection, tx, sql, ("cluster", ClusterId), ("group", groupId));
            var topic = SqlDatabase.AddParameter(command, "topic", "");
            var partition = SqlDatabase.AddParameter(command, "partition", 0);
            foreach (var (t, p) in partitions)
            {
                topic.Value = t;
                partition.Value = p;
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }, transaction: true, cancellationToken);
    }

    public Task DeleteTopicOffsetsAsync(string topic, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Topic(topic);
        ThrowIfNotReady();
        var d = Database.Dialect;
        var sql = $"DELETE FROM {Offsets} WHERE cluster_id = {d.Parameter("cluster")} AND topic = {d.Parameter("topic")}";
        return WriteAsync((connection, tx, ct) => SqlDatabase.ExecuteAsync(connection, tx, sql, ct, ("cluster", ClusterId), ("topic", topic)),
            transaction: false, cancellationToken);
    }

    public Task SaveGroupAsync(StoredGroup group, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Group(group);
        ThrowIfNotReady();
        (string, object?)[] parameters =
        [
            ("cluster", ClusterId), ("group", group.GroupId), ("protocol_type", group.ProtocolType), ("protocol", group.Protocol),
            ("generation", group.Generation), ("leader", group.Leader),
            ("empty_since", group.EmptySince is { } t ? GroupStoreSchema.ToUnixMs(t) : null), ("members", MemberCodec.Encode(group.Members)),
        ];
        return WriteAsync((connection, tx, ct) => SqlDatabase.ExecuteAsync(connection, tx, _upsertGroupSql, ct, parameters),
            transaction: false, cancellationToken);
    }

    public Task<IReadOnlyList<StoredGroup>> GetGroupsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        var d = Database.Dialect;
        var sql = "SELECT group_id, protocol_type, protocol, generation, leader, empty_since_ms, members " +
                  $"FROM {Groups} WHERE cluster_id = {d.Parameter("cluster")} ORDER BY {d.OrdinalOrder("group_id")}";
        return Database.ReadAsync<IReadOnlyList<StoredGroup>>(async (connection, ct) =>
        {
            await using var command = SqlDatabase.Command(connection, null, sql, ("cluster", ClusterId));
            return await SqlDatabase.ReadRowsAsync(command, ReadGroup, ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    public Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        ThrowIfNotReady();
        var d = Database.Dialect;
        var where = $"WHERE cluster_id = {d.Parameter("cluster")} AND group_id = {d.Parameter("group")}";
        // One transaction: the offsets and the group go together.
        return WriteAsync(async (connection, tx, ct) =>
        {
            await SqlDatabase.ExecuteAsync(connection, tx, $"DELETE FROM {Offsets} {where}", ct, ("cluster", ClusterId), ("group", groupId)).ConfigureAwait(false);
            await SqlDatabase.ExecuteAsync(connection, tx, $"DELETE FROM {Groups} {where}", ct, ("cluster", ClusterId), ("group", groupId)).ConfigureAwait(false);
        }, transaction: true, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        if (_batcher is not null) await _batcher.CompleteAsync().ConfigureAwait(false); // write what is queued
        _disposed = true;
        var closed = false;
        try
        {
            await Database.DisposeAsync().ConfigureAwait(false);
            closed = true;
        }
        finally
        {
            await DisposeCoreAsync(closed).ConfigureAwait(false);
        }
    }

    /// <summary>Releases what the engine's store holds besides the database (prepared statements); <paramref name="databaseClosed"/>
    /// says whether the database was closed without error (SQLite then records a clean shutdown).</summary>
    private protected virtual ValueTask DisposeCoreAsync(bool databaseClosed) => ValueTask.CompletedTask;

    private protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void ThrowIfNotReady()
    {
        ThrowIfDisposed();
        if (!_initialized) throw new InvalidOperationException("call InitializeAsync before using the group store");
    }

    private StoredGroup ReadGroup(DbDataReader r)
    {
        var groupId = r.GetString(0);
        IReadOnlyList<StoredMember> members;
        try
        {
            members = MemberCodec.Decode(r.GetFieldValue<byte[]>(6));
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{Database.Dialect.Name} group store {Database.Location}: group '{groupId}' has unreadable members: {ex.Message}", ex);
        }
        var emptySince = r.GetInt64OrNull(5);
        return new StoredGroup(groupId, r.GetStringOrNull(1), r.GetStringOrNull(2), r.GetInt32(3), r.GetStringOrNull(4),
            emptySince is { } ms ? GroupStoreSchema.FromUnixMs(ms) : null, members);
    }

    private static CommittedOffset ReadOffset(DbDataReader r, int first) => new(
        Topic: r.GetString(first),
        TopicId: r.GetGuid(first + 1),
        Partition: r.GetInt32(first + 2),
        Offset: r.GetInt64(first + 3),
        LeaderEpoch: r.GetInt32(first + 4),
        Metadata: r.GetStringOrNull(first + 5),
        CommitTime: GroupStoreSchema.FromUnixMs(r.GetInt64(first + 6)));
}
