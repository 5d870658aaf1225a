using Cairn.Sql;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Cairn.Broker.Groups.Store;

/// <summary>Settings of <see cref="PostgresGroupStore"/>.</summary>
internal sealed record PostgresGroupStoreOptions
{
    /// <summary>Most offsets one group-commit transaction writes; more queued commits go into the next transaction.</summary>
    public int MaxBatchOffsets { get; init; } = 16_384;

    /// <summary>Times a commit transaction is retried when PostgreSQL aborts it for a deadlock or serialization failure.</summary>
    public int MaxCommitRetries { get; init; } = 3;
}

/// <summary>
/// <see cref="IGroupStore"/> in PostgreSQL, through a pooled <see cref="NpgsqlDataSource"/>. A batch of offset commits is
/// one prepared <c>INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE</c> statement (one round trip, its own
/// implicit transaction). Migrations run under a transaction-scoped advisory lock, so several processes may start at once.
/// </summary>
internal sealed class PostgresGroupStore : SqlGroupStore
{
    /// <summary>Key of the advisory lock held while migrating ("CairnGrp").</summary>
    public const long MigrationLockKey = 0x436169726E477270;

    private const string UpsertOffsetsSql = """
        INSERT INTO group_offsets AS o (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, commit_time_ms)
        SELECT $1, u.g, u.tid, u.p, u.t, u.o, u.e, u.m, u.ts
        FROM unnest($2::text[], $3::uuid[], $4::integer[], $5::text[], $6::bigint[], $7::integer[], $8::text[], $9::bigint[])
            AS u(g, tid, p, t, o, e, m, ts)
        ON CONFLICT (cluster_id, group_id, topic_id, partition) DO UPDATE SET
            topic = EXCLUDED.topic, committed_offset = EXCLUDED.committed_offset, leader_epoch = EXCLUDED.leader_epoch,
            metadata = EXCLUDED.metadata, commit_time_ms = EXCLUDED.commit_time_ms
        """;

    private readonly int _maxCommitRetries;

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

    /// <param name="clusterId">Key of every row this store reads and writes.</param>
    /// <param name="connectionString">An Npgsql connection string (Host=...;Port=...;Database=...;Username=...); the store pools connections.</param>
    public PostgresGroupStore(string clusterId, string connectionString, ILogger logger, PostgresGroupStoreOptions? options = null)
        : this(clusterId, PostgresDatabase.Create(connectionString), logger, options)
    {
    }

    /// <param name="dataSource">A data source (connection pool) to use; disposed with the store only if <paramref name="ownsDataSource"/>.</param>
    public PostgresGroupStore(string clusterId, NpgsqlDataSource dataSource, ILogger logger, PostgresGroupStoreOptions? options = null, bool ownsDataSource = false)
        : this(clusterId, new PostgresDatabase(dataSource, ownsDataSource), logger, options)
    {
    }

    private PostgresGroupStore(string clusterId, PostgresDatabase database, ILogger logger, PostgresGroupStoreOptions? options)
        : base(database, clusterId, logger, (options ??= new PostgresGroupStoreOptions()).MaxBatchOffsets, MigrationLockKey)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxCommitRetries, nameof(options));
        _maxCommitRetries = options.MaxCommitRetries;
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

    /// <summary>Writes one drained batch as one statement (an implicit transaction). Later commits of a partition win.</summary>
    private protected override async ValueTask WriteCommitBatchAsync(List<PendingCommit<IReadOnlyList<GroupOffsetCommit>>> batch)
    {
        try
        {
            FillArrays(batch);
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await Database.WriteAsync(async (connection, _, ct) =>
                    {
                        _upsert.Connection = (NpgsqlConnection)connection;
                        try
                        {
                            await _upsert.PrepareAsync(ct).ConfigureAwait(false);
                            await _upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                        }
                        finally
                        {
                            _upsert.Connection = null;
                        }
                    }, transaction: false, CancellationToken.None).ConfigureAwait(false);
                    return;
                }
                catch (Exception ex) when (attempt < _maxCommitRetries && Database.Dialect.IsTransient(ex))
                {
                    Logger.LogDebug(ex, "PostgreSQL group store {Location}: retrying offset commit after {Error}", Database.Location, ex.Message);
                }
            }
        }
        finally
        {
            _rowIndex.Clear();
            _pGroups.TypedValue!.Clear();
            _pTopicIds.TypedValue!.Clear();
            _pPartitions.TypedValue!.Clear();
            _pTopics.TypedValue!.Clear();
            _pOffsets.TypedValue!.Clear();
            _pEpochs.TypedValue!.Clear();
            _pMetadata.TypedValue!.Clear();
            _pTimes.TypedValue!.Clear();
        }
    }

    /// <summary>One array element per partition: ON CONFLICT DO UPDATE may not touch a row twice in one statement, so the
    /// last commit of each partition replaces earlier ones.</summary>
    private void FillArrays(List<PendingCommit<IReadOnlyList<GroupOffsetCommit>>> batch)
    {
        var (groups, topicIds, partitions, topics) = (_pGroups.TypedValue!, _pTopicIds.TypedValue!, _pPartitions.TypedValue!, _pTopics.TypedValue!);
        var (offsets, epochs, metadata, times) = (_pOffsets.TypedValue!, _pEpochs.TypedValue!, _pMetadata.TypedValue!, _pTimes.TypedValue!);
        foreach (var pending in batch)
        {
            var commits = pending.Item;
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
    }

    private protected override ValueTask DisposeCoreAsync(bool databaseClosed) => _upsert.DisposeAsync();
}
