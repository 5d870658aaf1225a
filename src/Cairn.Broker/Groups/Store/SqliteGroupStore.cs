using Cairn.Sql;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups.Store;

/// <summary>Settings of <see cref="SqliteGroupStore"/>.</summary>
internal sealed record SqliteGroupStoreOptions
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
/// it is on disk). One dedicated writer connection does every write; reads use separate read-only connections
/// (<see cref="SqliteDatabase"/>). A batch of offset commits is one transaction of a prepared upsert run once per offset.
/// </summary>
internal sealed class SqliteGroupStore : SqlGroupStore
{
    /// <summary>File name of the store inside the broker's data directory.</summary>
    public const string DefaultFileName = "groups.db";

    private readonly byte[] _topicIdBuffer = new byte[16]; // bound by value (copied) on each execution
    private OffsetUpsert? _upsert;

    /// <summary>The store at <c>&lt;dataDir&gt;/groups.db</c>.</summary>
    public static SqliteGroupStore ForDataDir(string clusterId, string dataDir, ILogger logger, SqliteGroupStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        return new SqliteGroupStore(clusterId, Path.Combine(dataDir, DefaultFileName), logger, options);
    }

    /// <param name="clusterId">Key of every row this store reads and writes.</param>
    /// <param name="databasePath">The SQLite file; created (with its directory) by <see cref="SqlGroupStore.InitializeAsync"/> if missing.</param>
    public SqliteGroupStore(string clusterId, string databasePath, ILogger logger, SqliteGroupStoreOptions? options = null)
        : base(Open(databasePath, options ??= new SqliteGroupStoreOptions()), clusterId, logger, options.MaxBatchOffsets, migrationLockKey: 0)
    {
        DatabasePath = ((SqliteDatabase)Database).DataSource;
    }

    public string DatabasePath { get; }

    private static SqliteDatabase Open(string databasePath, SqliteGroupStoreOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatchOffsets, 1, nameof(options));
        return new SqliteDatabase(new SqliteDatabaseOptions
        {
            ConnectionString = new SqliteConnectionStringBuilder
            {
                DataSource = Path.GetFullPath(databasePath),
                Mode = SqliteOpenMode.ReadWriteCreate,
                Cache = SqliteCacheMode.Private,
                Pooling = false,
            }.ToString(),
            BusyTimeout = options.BusyTimeout,
            RequireWriteAheadLog = true,
            CreateDirectory = true,
            MaxIdleReadConnections = options.MaxIdleReadConnections,
        });
    }

    private protected override ValueTask WriteCommitBatchAsync(List<PendingCommit<IReadOnlyList<GroupOffsetCommit>>> batch) =>
        new(Database.WriteAsync((connection, tx, _) =>
        {
            var upsert = PreparedUpsert((SqliteConnection)connection);
            upsert.Command.Transaction = (SqliteTransaction)tx!;
            try
            {
                foreach (var pending in batch)
                {
                    var commits = pending.Item;
                    for (var i = 0; i < commits.Count; i++)
                    {
                        upsert.Group.Value = commits[i].GroupId;
                        var offsets = commits[i].Offsets;
                        for (var j = 0; j < offsets.Count; j++)
                        {
                            var o = offsets[j];
                            // Same bytes as Guid.ToByteArray (how Microsoft.Data.Sqlite binds and reads a Guid), without allocating.
                            o.TopicId.TryWriteBytes(_topicIdBuffer);
                            upsert.TopicId.Value = _topicIdBuffer;
                            upsert.Partition.Value = SmallInts.Box(o.Partition);
                            upsert.Topic.Value = o.Topic;
                            upsert.Offset.Value = o.Offset;
                            upsert.Epoch.Value = SmallInts.Box(o.LeaderEpoch);
                            upsert.Metadata.Value = (object?)o.Metadata ?? DBNull.Value;
                            upsert.Time.Value = GroupStoreSchema.ToUnixMs(o.CommitTime);
                            upsert.Command.ExecuteNonQuery();
                        }
                    }
                }
            }
            finally
            {
                // Drop references to the last request's strings so the prepared command does not keep them alive.
                upsert.Command.Transaction = null;
                upsert.Group.Value = null;
                upsert.Topic.Value = null;
                upsert.Metadata.Value = null;
            }
            return Task.CompletedTask;
        }, transaction: true, CancellationToken.None));

    /// <summary>The offset upsert, prepared once on the writer connection (called under the write lock).</summary>
    private OffsetUpsert PreparedUpsert(SqliteConnection writer)
    {
        if (_upsert is not null && ReferenceEquals(_upsert.Command.Connection, writer)) return _upsert;
        _upsert?.Command.Dispose();
        var d = Database.Dialect;
        var cmd = writer.CreateCommand();
        cmd.CommandText = d.UpsertSql("group_offsets",
        [
            ("cluster_id", d.Parameter("cluster")), ("group_id", d.Parameter("group")), ("topic_id", d.Parameter("topic_id")),
            ("partition", d.Parameter("partition")), ("topic", d.Parameter("topic")), ("committed_offset", d.Parameter("offset")),
            ("leader_epoch", d.Parameter("epoch")), ("metadata", d.Parameter("metadata")), ("commit_time_ms", d.Parameter("time")),
        ], ["cluster_id", "group_id", "topic_id", "partition"]);
        cmd.Parameters.Add(new SqliteParameter("@cluster", SqliteType.Text) { Value = ClusterId });
        var upsert = new OffsetUpsert(cmd,
            Group: cmd.Parameters.Add("@group", SqliteType.Text),
            TopicId: cmd.Parameters.Add("@topic_id", SqliteType.Blob),
            Partition: cmd.Parameters.Add("@partition", SqliteType.Integer),
            Topic: cmd.Parameters.Add("@topic", SqliteType.Text),
            Offset: cmd.Parameters.Add("@offset", SqliteType.Integer),
            Epoch: cmd.Parameters.Add("@epoch", SqliteType.Integer),
            Metadata: cmd.Parameters.Add("@metadata", SqliteType.Text),
            Time: cmd.Parameters.Add("@time", SqliteType.Integer));
        cmd.Prepare();
        return _upsert = upsert;
    }

    /// <summary>The prepared upsert and its parameters, rebound for every offset instead of building a command per row.</summary>
    private sealed record OffsetUpsert(SqliteCommand Command, SqliteParameter Group, SqliteParameter TopicId, SqliteParameter Partition,
        SqliteParameter Topic, SqliteParameter Offset, SqliteParameter Epoch, SqliteParameter Metadata, SqliteParameter Time);

    private protected override ValueTask DisposeCoreAsync()
    {
        _upsert?.Command.Dispose();
        _upsert = null;
        return ValueTask.CompletedTask;
    }
}
