using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Cairn.Broker.Groups.Store;

/// <summary>Settings of <see cref="PostgresGroupStore"/>.</summary>
public sealed record PostgresGroupStoreOptions
{
    /// <summary>Most offsets one group-commit transaction writes; more queued commits go into the next transaction.</summary>
    public int MaxBatchOffsets { get; init; } = 16_384;

    /// <summary>Times a commit transaction is retried when PostgreSQL aborts it for a deadlock or serialization failure.</summary>
    public int MaxCommitRetries { get; init; } = 3;
}

/// <summary>
/// <see cref="IGroupStore"/> in PostgreSQL, through a pooled <see cref="NpgsqlDataSource"/>. Offset commits go through a
/// group-commit loop: every commit queued while a transaction is in flight is written by the next transaction, one
/// prepared <c>INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE</c> statement (one round trip) per batch.
/// Migrations run under a transaction-scoped advisory lock, so several processes may start at once.
/// </summary>
public sealed class PostgresGroupStore : IGroupStore
{
    /// <summary>Key of the advisory lock held while migrating ("CairnGrp").</summary>
    public const long MigrationLockKey = 0x436169726E477270;

    /// <summary>Newest schema version this build knows.</summary>
    public static int SchemaVersion => Migrations[^1].Version;

    private static readonly (int Version, string Sql)[] Migrations =
    [
        (1, """
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
            """),
        (2, "CREATE INDEX group_offsets_by_topic ON group_offsets (cluster_id, topic);"),
    ];

    private const string UpsertOffsetsSql = """
        INSERT INTO group_offsets AS o (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, commit_time_ms)
        SELECT $1, u.g, u.tid, u.p, u.t, u.o, u.e, u.m, u.ts
        FROM unnest($2::text[], $3::uuid[], $4::integer[], $5::text[], $6::bigint[], $7::integer[], $8::text[], $9::bigint[])
            AS u(g, tid, p, t, o, e, m, ts)
        ON CONFLICT (cluster_id, group_id, topic_id, partition) DO UPDATE SET
            topic = EXCLUDED.topic, committed_offset = EXCLUDED.committed_offset, leader_epoch = EXCLUDED.leader_epoch,
            metadata = EXCLUDED.metadata, commit_time_ms = EXCLUDED.commit_time_ms
        """;

    private const string SelectOffsetsColumns = "topic, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time_ms";

    private readonly string _clusterId;
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly ILogger _logger;
    private readonly PostgresGroupStoreOptions _options;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly string _location;

    // Owned by the commit loop (one batch at a time): the statement, its array parameters and the de-duplication map,
    // all reused from batch to batch.
    private readonly NpgsqlCommand _upsert;
    private readonly NpgsqlParameter<List<string>> _pGroups = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = new() };
    private readonly NpgsqlParameter<List<Guid>> _pTopicIds = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid, TypedValue = new() };
    private readonly NpgsqlParameter<List<int>> _pPartitions = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, TypedValue = new() };
    private readonly NpgsqlParameter<List<string>> _pTopics = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = new() };
    private readonly NpgsqlParameter<List<long>> _pOffsets = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = new() };
    private readonly NpgsqlParameter<List<int>> _pEpochs = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, TypedValue = new() };
    private readonly NpgsqlParameter<List<string?>> _pMetadata = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = new() };
    private readonly NpgsqlParameter<List<long>> _pTimes = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = new() };
    private readonly Dictionary<(string Group, Guid TopicId, int Partition), int> _rowIndex = new();

    private CommitBatcher? _batcher;
    private volatile bool _initialized;
    private volatile bool _disposed;

    /// <param name="clusterId">Key of every row this store reads and writes.</param>
    /// <param name="connectionString">An Npgsql connection string (Host=...;Port=...;Database=...;Username=...); the store pools connections.</param>
    public PostgresGroupStore(string clusterId, string connectionString, ILogger logger, PostgresGroupStoreOptions? options = null)
        : this(clusterId, CreateDataSource(connectionString), logger, options, ownsDataSource: true)
    {
    }

    /// <param name="dataSource">A data source (connection pool) to use; disposed with the store only if <paramref name="ownsDataSource"/>.</param>
    public PostgresGroupStore(string clusterId, NpgsqlDataSource dataSource, ILogger logger, PostgresGroupStoreOptions? options = null, bool ownsDataSource = false)
    {
        GroupStoreValidation.ClusterId(clusterId);
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(logger);
        _clusterId = clusterId;
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
        _logger = logger;
        _options = options ?? new PostgresGroupStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxBatchOffsets, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxCommitRetries, nameof(options));
        var csb = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        _location = $"{csb.Host}:{csb.Port}/{csb.Database}";
        _upsert = new NpgsqlCommand(UpsertOffsetsSql);
        _upsert.Parameters.Add(new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = clusterId });
        _upsert.Parameters.Add(_pGroups);
        _upsert.Parameters.Add(_pTopicIds);
        _upsert.Parameters.Add(_pPartitions);
        _upsert.Parameters.Add(_pTopics);
        _upsert.Parameters.Add(_pOffsets);
        _upsert.Parameters.Add(_pEpochs);
        _upsert.Parameters.Add(_pMetadata);
        _upsert.Parameters.Add(_pTimes);
    }

    private static NpgsqlDataSource CreateDataSource(string connectionString)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return NpgsqlDataSource.Create(connectionString);
    }

    public string ClusterId => _clusterId;

    /// <summary>Commit transactions run so far (for diagnostics and tests of group commit).</summary>
    internal long CommitTransactions => _batcher?.Transactions ?? 0;

    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await _initLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized) return;
            await MigrateAsync(cancellationToken).ConfigureAwait(false);
            _batcher = new CommitBatcher(WriteCommitBatchAsync, _logger, _options.MaxBatchOffsets);
            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", conn, tx))
        {
            lockCmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = MigrationLockKey });
            await lockCmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await ExecuteAsync(conn, tx, """
            CREATE TABLE IF NOT EXISTS schema_version (
                version    integer     PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, cancellationToken).ConfigureAwait(false);
        long current;
        await using (var cmd = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_version", conn, tx))
            current = Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false));
        if (current > SchemaVersion) throw GroupStoreSchema.Newer("PostgreSQL", _location, current, SchemaVersion);
        foreach (var (version, sql) in Migrations)
        {
            if (version <= current) continue;
            await ExecuteAsync(conn, tx, sql, cancellationToken).ConfigureAwait(false);
            await using var insert = new NpgsqlCommand("INSERT INTO schema_version (version) VALUES ($1)", conn, tx);
            insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("PostgreSQL group store {Location}: applied schema migration {Version}", _location, version);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task CommitOffsetsAsync(IReadOnlyList<GroupOffsetCommit> commits, CancellationToken cancellationToken = default)
    {
        var count = GroupStoreValidation.Commits(commits);
        ThrowIfNotReady();
        if (count == 0) return cancellationToken.IsCancellationRequested ? Task.FromCanceled(cancellationToken) : Task.CompletedTask;
        return _batcher!.EnqueueAsync(commits, count, cancellationToken);
    }

    /// <summary>Writes one drained batch as one statement (an implicit transaction). Later commits of a partition win.</summary>
    private async ValueTask WriteCommitBatchAsync(List<PendingCommit> batch)
    {
        var groups = _pGroups.TypedValue!;
        var topicIds = _pTopicIds.TypedValue!;
        var partitions = _pPartitions.TypedValue!;
        var topics = _pTopics.TypedValue!;
        var offsets = _pOffsets.TypedValue!;
        var epochs = _pEpochs.TypedValue!;
        var metadata = _pMetadata.TypedValue!;
        var times = _pTimes.TypedValue!;
        try
        {
            // ON CONFLICT DO UPDATE may not touch a row twice in one statement: keep only the last commit of each partition.
            foreach (var pending in batch)
            {
                var commits = pending.Commits;
                for (var i = 0; i < commits.Count; i++)
                {
                    var group = commits[i].GroupId;
                    var list = commits[i].Offsets;
                    for (var j = 0; j < list.Count; j++)
                    {
                        var o = list[j];
                        var time = GroupStoreSchema.ToUnixMs(o.CommitTime);
                        if (_rowIndex.TryGetValue((group, o.TopicId, o.Partition), out var row))
                        {
                            topics[row] = o.Topic;
                            offsets[row] = o.Offset;
                            epochs[row] = o.LeaderEpoch;
                            metadata[row] = o.Metadata;
                            times[row] = time;
                            continue;
                        }
                        _rowIndex.Add((group, o.TopicId, o.Partition), groups.Count);
                        groups.Add(group);
                        topicIds.Add(o.TopicId);
                        partitions.Add(o.Partition);
                        topics.Add(o.Topic);
                        offsets.Add(o.Offset);
                        epochs.Add(o.LeaderEpoch);
                        metadata.Add(o.Metadata);
                        times.Add(time);
                    }
                }
            }

            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await using var conn = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
                    _upsert.Connection = conn;
                    try
                    {
                        await _upsert.PrepareAsync().ConfigureAwait(false);
                        await _upsert.ExecuteNonQueryAsync().ConfigureAwait(false);
                    }
                    finally
                    {
                        _upsert.Connection = null;
                    }
                    return;
                }
                catch (PostgresException ex) when (attempt < _options.MaxCommitRetries
                    && ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
                {
                    _logger.LogDebug(ex, "PostgreSQL group store {Location}: retrying offset commit after {SqlState}", _location, ex.SqlState);
                }
            }
        }
        finally
        {
            _rowIndex.Clear();
            groups.Clear();
            topicIds.Clear();
            partitions.Clear();
            topics.Clear();
            offsets.Clear();
            epochs.Clear();
            metadata.Clear();
            times.Clear();
        }
    }

    public async Task<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>> GetAllOffsetsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        await using var cmd = _dataSource.CreateCommand(
            $"""SELECT group_id, {SelectOffsetsColumns} FROM group_offsets WHERE cluster_id = $1 ORDER BY group_id COLLATE "C", topic COLLATE "C", partition, topic_id""");
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var result = new Dictionary<string, IReadOnlyList<CommittedOffset>>(StringComparer.Ordinal);
        string? currentGroup = null;
        List<CommittedOffset>? current = null;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var group = reader.GetString(0);
            if (current is null || group != currentGroup)
            {
                currentGroup = group;
                result[group] = current = new List<CommittedOffset>();
            }
            current.Add(GroupStoreSchema.ReadOffset(reader, 1));
        }
        return result;
    }


    public async Task DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        GroupStoreValidation.Partitions(partitions);
        ThrowIfNotReady();
        if (partitions.Count == 0) return;
        var topics = new string[partitions.Count];
        var indexes = new int[partitions.Count];
        for (var i = 0; i < partitions.Count; i++) (topics[i], indexes[i]) = partitions[i];
        await using var cmd = _dataSource.CreateCommand("""
            DELETE FROM group_offsets
            WHERE cluster_id = $1 AND group_id = $2
              AND (topic, partition) IN (SELECT t, p FROM unnest($3::text[], $4::integer[]) AS u(t, p))
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = groupId });
        cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = topics });
        cmd.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = indexes });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task DeleteTopicOffsetsAsync(string topic, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Topic(topic);
        ThrowIfNotReady();
        await using var cmd = _dataSource.CreateCommand("DELETE FROM group_offsets WHERE cluster_id = $1 AND topic = $2");
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = topic });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task SaveGroupAsync(StoredGroup group, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Group(group);
        ThrowIfNotReady();
        await using var cmd = _dataSource.CreateCommand("""
            INSERT INTO consumer_groups (cluster_id, group_id, protocol_type, protocol, generation, leader, empty_since_ms, members, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
            ON CONFLICT (cluster_id, group_id) DO UPDATE SET
                protocol_type = EXCLUDED.protocol_type, protocol = EXCLUDED.protocol, generation = EXCLUDED.generation,
                leader = EXCLUDED.leader, empty_since_ms = EXCLUDED.empty_since_ms, members = EXCLUDED.members,
                updated_at = EXCLUDED.updated_at
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = group.GroupId });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)group.ProtocolType ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)group.Protocol ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = group.Generation });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)group.Leader ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter
        {
            NpgsqlDbType = NpgsqlDbType.Bigint,
            Value = group.EmptySince is { } t ? GroupStoreSchema.ToUnixMs(t) : DBNull.Value,
        });
        cmd.Parameters.Add(new NpgsqlParameter<byte[]> { NpgsqlDbType = NpgsqlDbType.Bytea, TypedValue = MemberCodec.Encode(group.Members) });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<StoredGroup>> GetGroupsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        await using var cmd = _dataSource.CreateCommand("""
            SELECT group_id, protocol_type, protocol, generation, leader, empty_since_ms, members
            FROM consumer_groups WHERE cluster_id = $1 ORDER BY group_id COLLATE "C"
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<StoredGroup>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var groupId = reader.GetString(0);
            IReadOnlyList<StoredMember> members;
            try
            {
                members = MemberCodec.Decode(reader.GetFieldValue<byte[]>(6));
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"PostgreSQL group store {_location}: group '{groupId}' has unreadable members: {ex.Message}", ex);
            }
            result.Add(new StoredGroup(
                groupId,
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(2) ? null : reader.GetString(2),
                reader.GetInt32(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.IsDBNull(5) ? null : GroupStoreSchema.FromUnixMs(reader.GetInt64(5)),
                members));
        }
        return result;
    }

    public async Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        ThrowIfNotReady();
        // One statement, so one transaction: the offsets and the group go together.
        await using var cmd = _dataSource.CreateCommand("""
            WITH deleted_offsets AS (DELETE FROM group_offsets WHERE cluster_id = $1 AND group_id = $2)
            DELETE FROM consumer_groups WHERE cluster_id = $1 AND group_id = $2
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = groupId });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        if (_batcher is not null) await _batcher.CompleteAsync().ConfigureAwait(false); // write what is queued
        _disposed = true;
        await _upsert.DisposeAsync().ConfigureAwait(false);
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void ThrowIfNotReady()
    {
        ThrowIfDisposed();
        if (!_initialized) throw new InvalidOperationException("call InitializeAsync before using the group store");
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
