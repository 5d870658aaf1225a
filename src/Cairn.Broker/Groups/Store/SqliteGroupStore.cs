using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups.Store;

/// <summary>Settings of <see cref="SqliteGroupStore"/>.</summary>
public sealed record SqliteGroupStoreOptions
{
    /// <summary>How long a statement waits for a lock held by another connection or process (SQLite busy timeout).</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Most offsets one group-commit transaction writes; more queued commits go into the next transaction.</summary>
    public int MaxBatchOffsets { get; init; } = 16_384;

    /// <summary>Idle read connections kept open for reuse.</summary>
    public int MaxIdleReadConnections { get; init; } = 4;
}

/// <summary>
/// <see cref="IGroupStore"/> in an embedded SQLite file (WAL journal, synchronous=FULL: a commit is acknowledged only once
/// it is on disk). One dedicated writer connection, guarded by a semaphore, does every write; reads use separate read-only
/// connections. Offset commits go through a group-commit loop: commits that arrive while a transaction is in flight are
/// written together in the next one.
/// </summary>
public sealed class SqliteGroupStore : IGroupStore
{
    /// <summary>File name of the store inside the broker's data directory.</summary>
    public const string DefaultFileName = "groups.db";

    /// <summary>Newest schema version this build knows.</summary>
    public static int SchemaVersion => Migrations[^1].Version;

    private static readonly (int Version, string Sql)[] Migrations =
    [
        (1, """
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
            """),
        (2, "CREATE INDEX group_offsets_by_topic ON group_offsets (cluster_id, topic);"),
    ];

    private const string UpsertOffsetSql = """
        INSERT INTO group_offsets (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, commit_time_ms)
        VALUES ($cluster, $group, $topic_id, $partition, $topic, $offset, $epoch, $metadata, $time)
        ON CONFLICT (cluster_id, group_id, topic_id, partition) DO UPDATE SET
            topic = excluded.topic, committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
            metadata = excluded.metadata, commit_time_ms = excluded.commit_time_ms
        """;

    private const string SelectOffsetsColumns = "topic, topic_id, partition, committed_offset, leader_epoch, metadata, commit_time_ms";

    private static readonly Lazy<bool> NativeInit = new(() =>
    {
        SQLitePCL.Batteries_V2.Init();
        return true;
    });

    private readonly string _clusterId;
    private readonly string _path;
    private readonly ILogger _logger;
    private readonly SqliteGroupStoreOptions _options;
    private readonly string _writeConnectionString;
    private readonly string _readConnectionString;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly ConcurrentBag<SqliteConnection> _readers = new();

    private SqliteConnection? _writer;
    private SqliteCommand? _upsert;
    private SqliteParameter _pGroup = null!, _pTopicId = null!, _pPartition = null!, _pTopic = null!, _pOffset = null!,
        _pEpoch = null!, _pMetadata = null!, _pTime = null!;
    private readonly byte[] _topicIdBuffer = new byte[16]; // bound by value (copied) on each execution
    private CommitBatcher? _batcher;
    private volatile bool _initialized;
    private volatile bool _disposed;

    /// <summary>The store at <c>&lt;dataDir&gt;/groups.db</c>.</summary>
    public static SqliteGroupStore ForDataDir(string clusterId, string dataDir, ILogger logger, SqliteGroupStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        return new SqliteGroupStore(clusterId, Path.Combine(dataDir, DefaultFileName), logger, options);
    }

    /// <param name="clusterId">Key of every row this store reads and writes.</param>
    /// <param name="databasePath">The SQLite file; created (with its directory) by <see cref="InitializeAsync"/> if missing.</param>
    public SqliteGroupStore(string clusterId, string databasePath, ILogger logger, SqliteGroupStoreOptions? options = null)
    {
        GroupStoreValidation.ClusterId(clusterId);
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        ArgumentNullException.ThrowIfNull(logger);
        _clusterId = clusterId;
        _path = Path.GetFullPath(databasePath);
        _logger = logger;
        _options = options ?? new SqliteGroupStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxBatchOffsets, 1, nameof(options));
        if (_options.BusyTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "BusyTimeout is negative");
        var timeoutSeconds = (int)Math.Ceiling(_options.BusyTimeout.TotalSeconds);
        string ConnectionString(SqliteOpenMode mode) => new SqliteConnectionStringBuilder
        {
            DataSource = _path,
            Mode = mode,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
            DefaultTimeout = timeoutSeconds,
        }.ToString();
        _writeConnectionString = ConnectionString(SqliteOpenMode.ReadWriteCreate);
        _readConnectionString = ConnectionString(SqliteOpenMode.ReadOnly);
    }

    public string ClusterId => _clusterId;

    public string DatabasePath => _path;

    /// <summary>Commit transactions run so far (for diagnostics and tests of group commit).</summary>
    internal long CommitTransactions => _batcher?.Transactions ?? 0;

    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await _initLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized) return;
            _ = NativeInit.Value;
            var dir = Path.GetDirectoryName(_path);
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);

            var writer = new SqliteConnection(_writeConnectionString);
            try
            {
                writer.Open();
                Execute(writer, $"PRAGMA busy_timeout = {(long)_options.BusyTimeout.TotalMilliseconds};");
                var mode = Scalar(writer, "PRAGMA journal_mode = WAL;") as string;
                if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                    throw new InvalidOperationException($"SQLite group store {_path}: could not switch to WAL journal mode (got '{mode}')");
                Execute(writer, "PRAGMA synchronous = FULL;");
                Migrate(writer);
                PrepareWriterCommands(writer);
            }
            catch
            {
                writer.Dispose();
                throw;
            }
            _writer = writer;
            _batcher = new CommitBatcher(WriteCommitBatchAsync, _logger, _options.MaxBatchOffsets);
            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }
    }

    private void Migrate(SqliteConnection writer)
    {
        // BEGIN IMMEDIATE takes the database's write lock, so two processes migrating at once run one after the other.
        using var tx = writer.BeginTransaction(deferred: false);
        Execute(writer, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ms INTEGER NOT NULL);", tx);
        var current = Convert.ToInt64(Scalar(writer, "SELECT coalesce(max(version), 0) FROM schema_version;", tx));
        if (current > SchemaVersion) throw GroupStoreSchema.Newer("SQLite", _path, current, SchemaVersion);
        foreach (var (version, sql) in Migrations)
        {
            if (version <= current) continue;
            Execute(writer, sql, tx);
            using var insert = writer.CreateCommand();
            insert.Transaction = tx;
            insert.CommandText = "INSERT INTO schema_version (version, applied_ms) VALUES ($v, $t);";
            insert.Parameters.AddWithValue("$v", version);
            insert.Parameters.AddWithValue("$t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            insert.ExecuteNonQuery();
            _logger.LogInformation("SQLite group store {Path}: applied schema migration {Version}", _path, version);
        }
        tx.Commit();
    }

    private void PrepareWriterCommands(SqliteConnection writer)
    {
        var cmd = writer.CreateCommand();
        cmd.CommandText = UpsertOffsetSql;
        cmd.Parameters.Add(new SqliteParameter("$cluster", SqliteType.Text) { Value = _clusterId });
        _pGroup = cmd.Parameters.Add("$group", SqliteType.Text);
        _pTopicId = cmd.Parameters.Add("$topic_id", SqliteType.Blob);
        _pPartition = cmd.Parameters.Add("$partition", SqliteType.Integer);
        _pTopic = cmd.Parameters.Add("$topic", SqliteType.Text);
        _pOffset = cmd.Parameters.Add("$offset", SqliteType.Integer);
        _pEpoch = cmd.Parameters.Add("$epoch", SqliteType.Integer);
        _pMetadata = cmd.Parameters.Add("$metadata", SqliteType.Text);
        _pTime = cmd.Parameters.Add("$time", SqliteType.Integer);
        cmd.Prepare();
        _upsert = cmd;
    }

    public Task CommitOffsetsAsync(IReadOnlyList<GroupOffsetCommit> commits, CancellationToken cancellationToken = default)
    {
        var count = GroupStoreValidation.Commits(commits);
        ThrowIfNotReady();
        if (count == 0) return cancellationToken.IsCancellationRequested ? Task.FromCanceled(cancellationToken) : Task.CompletedTask;
        return _batcher!.EnqueueAsync(commits, count, cancellationToken);
    }

    private ValueTask WriteCommitBatchAsync(List<PendingCommit> batch)
    {
        if (_writeLock.Wait(0))
        {
            try
            {
                WriteCommitBatchLocked(batch);
            }
            finally
            {
                _writeLock.Release();
            }
            return ValueTask.CompletedTask;
        }
        return WaitAndWriteAsync(batch);
    }

    private async ValueTask WaitAndWriteAsync(List<PendingCommit> batch)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            WriteCommitBatchLocked(batch);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void WriteCommitBatchLocked(List<PendingCommit> batch)
    {
        var writer = _writer ?? throw new ObjectDisposedException(nameof(SqliteGroupStore));
        var upsert = _upsert!;
        using var tx = writer.BeginTransaction(deferred: false);
        upsert.Transaction = tx;
        try
        {
            foreach (var pending in batch)
            {
                var commits = pending.Commits;
                for (var i = 0; i < commits.Count; i++)
                {
                    var commit = commits[i];
                    _pGroup.Value = commit.GroupId;
                    var offsets = commit.Offsets;
                    for (var j = 0; j < offsets.Count; j++)
                    {
                        var o = offsets[j];
                        // Same bytes as Guid.ToByteArray (how Microsoft.Data.Sqlite binds and reads a Guid), without allocating.
                        o.TopicId.TryWriteBytes(_topicIdBuffer);
                        _pTopicId.Value = _topicIdBuffer;
                        _pPartition.Value = SmallInts.Box(o.Partition);
                        _pTopic.Value = o.Topic;
                        _pOffset.Value = o.Offset;
                        _pEpoch.Value = SmallInts.Box(o.LeaderEpoch);
                        _pMetadata.Value = (object?)o.Metadata ?? DBNull.Value;
                        _pTime.Value = GroupStoreSchema.ToUnixMs(o.CommitTime);
                        upsert.ExecuteNonQuery();
                    }
                }
            }
            tx.Commit();
        }
        finally
        {
            upsert.Transaction = null;
            _pGroup.Value = null;
            _pTopic.Value = null;
            _pMetadata.Value = null;
        }
    }

    public Task<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>> GetAllOffsetsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        cancellationToken.ThrowIfCancellationRequested();
        var conn = RentReader();
        try
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = $"SELECT group_id, {SelectOffsetsColumns} FROM group_offsets WHERE cluster_id = $cluster ORDER BY group_id, topic, partition, topic_id;";
            cmd.Parameters.AddWithValue("$cluster", _clusterId);
            using var reader = cmd.ExecuteReader();
            var result = new Dictionary<string, IReadOnlyList<CommittedOffset>>(StringComparer.Ordinal);
            string? currentGroup = null;
            List<CommittedOffset>? current = null;
            while (reader.Read())
            {
                var group = reader.GetString(0);
                if (current is null || group != currentGroup)
                {
                    currentGroup = group;
                    result[group] = current = new List<CommittedOffset>();
                }
                current.Add(GroupStoreSchema.ReadOffset(reader, 1));
            }
            return Task.FromResult<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>>(result);
        }
        finally
        {
            ReturnReader(conn);
        }
    }


    public async Task DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        GroupStoreValidation.Partitions(partitions);
        ThrowIfNotReady();
        if (partitions.Count == 0) return;
        await WriteAsync(writer =>
        {
            using var tx = writer.BeginTransaction(deferred: false);
            using var cmd = writer.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM group_offsets WHERE cluster_id = $cluster AND group_id = $group AND topic = $topic AND partition = $partition;";
            cmd.Parameters.AddWithValue("$cluster", _clusterId);
            cmd.Parameters.AddWithValue("$group", groupId);
            var pTopic = cmd.Parameters.Add("$topic", SqliteType.Text);
            var pPartition = cmd.Parameters.Add("$partition", SqliteType.Integer);
            foreach (var (topic, partition) in partitions)
            {
                pTopic.Value = topic;
                pPartition.Value = partition;
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task DeleteTopicOffsetsAsync(string topic, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Topic(topic);
        ThrowIfNotReady();
        return WriteAsync(writer =>
        {
            using var cmd = writer.CreateCommand();
            cmd.CommandText = "DELETE FROM group_offsets WHERE cluster_id = $cluster AND topic = $topic;";
            cmd.Parameters.AddWithValue("$cluster", _clusterId);
            cmd.Parameters.AddWithValue("$topic", topic);
            cmd.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task SaveGroupAsync(StoredGroup group, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Group(group);
        ThrowIfNotReady();
        var members = MemberCodec.Encode(group.Members);
        return WriteAsync(writer =>
        {
            using var cmd = writer.CreateCommand();
            cmd.CommandText = """
                INSERT INTO consumer_groups (cluster_id, group_id, protocol_type, protocol, generation, leader, empty_since_ms, members, updated_ms)
                VALUES ($cluster, $group, $protocol_type, $protocol, $generation, $leader, $empty_since, $members, $updated)
                ON CONFLICT (cluster_id, group_id) DO UPDATE SET
                    protocol_type = excluded.protocol_type, protocol = excluded.protocol, generation = excluded.generation,
                    leader = excluded.leader, empty_since_ms = excluded.empty_since_ms, members = excluded.members,
                    updated_ms = excluded.updated_ms;
                """;
            cmd.Parameters.AddWithValue("$cluster", _clusterId);
            cmd.Parameters.AddWithValue("$group", group.GroupId);
            cmd.Parameters.AddWithValue("$protocol_type", (object?)group.ProtocolType ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$protocol", (object?)group.Protocol ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$generation", group.Generation);
            cmd.Parameters.AddWithValue("$leader", (object?)group.Leader ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$empty_since", group.EmptySince is { } t ? GroupStoreSchema.ToUnixMs(t) : DBNull.Value);
            cmd.Parameters.Add("$members", SqliteType.Blob).Value = members;
            cmd.Parameters.AddWithValue("$updated", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            cmd.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task<IReadOnlyList<StoredGroup>> GetGroupsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        cancellationToken.ThrowIfCancellationRequested();
        var conn = RentReader();
        try
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = """
                SELECT group_id, protocol_type, protocol, generation, leader, empty_since_ms, members
                FROM consumer_groups WHERE cluster_id = $cluster ORDER BY group_id;
                """;
            cmd.Parameters.AddWithValue("$cluster", _clusterId);
            using var reader = cmd.ExecuteReader();
            var result = new List<StoredGroup>();
            while (reader.Read())
            {
                var groupId = reader.GetString(0);
                IReadOnlyList<StoredMember> members;
                try
                {
                    members = MemberCodec.Decode((byte[])reader.GetValue(6));
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException($"SQLite group store {_path}: group '{groupId}' has unreadable members: {ex.Message}", ex);
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
            return Task.FromResult<IReadOnlyList<StoredGroup>>(result);
        }
        finally
        {
            ReturnReader(conn);
        }
    }

    public Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        ThrowIfNotReady();
        return WriteAsync(writer =>
        {
            using var tx = writer.BeginTransaction(deferred: false);
            using var cmd = writer.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = """
                DELETE FROM group_offsets WHERE cluster_id = $cluster AND group_id = $group;
                DELETE FROM consumer_groups WHERE cluster_id = $cluster AND group_id = $group;
                """;
            cmd.Parameters.AddWithValue("$cluster", _clusterId);
            cmd.Parameters.AddWithValue("$group", groupId);
            cmd.ExecuteNonQuery();
            tx.Commit();
        }, cancellationToken);
    }

    /// <summary>Runs one write on the writer connection, holding the writer lock.</summary>
    private async Task WriteAsync(Action<SqliteConnection> write, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var writer = _writer;
            ObjectDisposedException.ThrowIf(_disposed || writer is null, this);
            write(writer);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private SqliteConnection RentReader()
    {
        if (_readers.TryTake(out var conn)) return conn;
        conn = new SqliteConnection(_readConnectionString);
        try
        {
            conn.Open();
            Execute(conn, $"PRAGMA busy_timeout = {(long)_options.BusyTimeout.TotalMilliseconds};");
        }
        catch
        {
            conn.Dispose();
            throw;
        }
        return conn;
    }

    private void ReturnReader(SqliteConnection conn)
    {
        if (_disposed || _readers.Count >= _options.MaxIdleReadConnections)
        {
            conn.Dispose();
            return;
        }
        _readers.Add(conn);
        if (_disposed && _readers.TryTake(out var late)) late.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        if (_batcher is not null) await _batcher.CompleteAsync().ConfigureAwait(false); // write what is queued
        _disposed = true;
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _upsert?.Dispose();
            _upsert = null;
            _writer?.Dispose();
            _writer = null;
        }
        finally
        {
            _writeLock.Release();
        }
        while (_readers.TryTake(out var conn)) conn.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void ThrowIfNotReady()
    {
        ThrowIfDisposed();
        if (!_initialized) throw new InvalidOperationException("call InitializeAsync before using the group store");
    }

    private static void Execute(SqliteConnection conn, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection conn, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
