using System.Diagnostics;
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

    /// <summary>Start even when the start-up check finds the database damaged or missing writes (offset.store.accept.loss):
    /// the problem is logged and reported (metric, /healthz) instead of failing <see cref="SqlGroupStore.InitializeAsync"/>.</summary>
    public bool AcceptLoss { get; init; }

    /// <summary>How often <c>groups.db.state</c> is rewritten while writes happen; writes lost from before the last rewrite are detected.</summary>
    public TimeSpan WriteRecordInterval { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// <see cref="IGroupStore"/> in an embedded SQLite file (WAL journal, synchronous=FULL: a commit is acknowledged only once
/// it is on disk). One dedicated writer connection does every write; reads use separate read-only connections
/// (<see cref="SqliteDatabase"/>). A batch of offset commits is one transaction of a prepared upsert run once per offset.
/// <para>
/// Start-up checks the file (a WAL checkpoint or a crash can only be trusted so far): after an unclean stop (the
/// write-ahead log is present, or <c>groups.db.state</c> does not record a clean shutdown) <c>PRAGMA quick_check</c> must
/// pass, and on every start the database's write sequence must not be below the one <see cref="SqliteWriteRecord"/> last
/// recorded. Either failure is logged as an error saying how to recover and fails the start, unless
/// <see cref="SqliteGroupStoreOptions.AcceptLoss"/>.
/// </para>
/// </summary>
internal sealed class SqliteGroupStore : SqlGroupStore
{
    /// <summary>File name of the store inside the broker's data directory.</summary>
    public const string DefaultFileName = "groups.db";

    /// <summary>Most lines of <c>PRAGMA quick_check</c> output reported.</summary>
    private const int MaxQuickCheckLines = 10;

    private readonly byte[] _topicIdBuffer = new byte[16]; // bound by value (copied) on each execution
    private readonly SqliteGroupStoreOptions _options;
    private readonly SqliteWriteRecord _record;
    private OffsetUpsert? _upsert;
    private SqliteWriteState? _previous;
    private bool _databaseExisted;
    private bool _recordStarted;

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
        _options = options;
        _record = new SqliteWriteRecord(DatabasePath, () => WriteSequence, logger);
    }

    /// <summary>Where the write-sequence record is (<c>groups.db.state</c>).</summary>
    public string WriteRecordPath => _record.Path;

    /// <summary>Rewrites the write-sequence record now if the sequence grew (the timer does it every few seconds).</summary>
    internal void RefreshWriteRecord() => _record.Refresh();

    private protected override bool CountsWrites => true;

    private protected override async Task BeforeMigrateAsync(CancellationToken cancellationToken)
    {
        _databaseExisted = File.Exists(DatabasePath);
        var recordUnreadable = false;
        try
        {
            _previous = SqliteWriteRecord.Read(_record.Path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            recordUnreadable = true;
            Logger.LogWarning("SQLite group store {Path}: cannot read {Record} ({Error}); lost offset commits cannot be detected on this start",
                DatabasePath, _record.Path, e.Message);
        }
        if (_databaseExisted) await QuickCheckIfUncleanAsync(recordUnreadable, cancellationToken).ConfigureAwait(false);
        await CheckWriteSequenceAsync(cancellationToken).ConfigureAwait(false); // also when the file is missing: it had writes
    }

    /// <summary>After an unclean stop (or without a record saying it was clean) <c>PRAGMA quick_check</c> must pass.</summary>
    private async Task QuickCheckIfUncleanAsync(bool recordUnreadable, CancellationToken cancellationToken)
    {
        var wal = DatabasePath + "-wal";
        var why = File.Exists(wal) ? $"its write-ahead log {Path.GetFileName(wal)} is present ({new FileInfo(wal).Length} bytes)"
            : recordUnreadable ? $"{Path.GetFileName(_record.Path)} is unreadable"
            : _previous is null ? $"there is no {Path.GetFileName(_record.Path)} recording a clean shutdown (first start of this version, or it was removed)"
            : !_previous.Clean ? $"{Path.GetFileName(_record.Path)} says it was not closed cleanly (the broker was killed or crashed)"
            : null;
        if (why is null) return;
        var clock = Stopwatch.StartNew();
        var failures = await QuickCheckAsync(cancellationToken).ConfigureAwait(false);
        if (failures is null)
        {
            Logger.LogInformation("SQLite group store {Path}: unclean start ({Why}); PRAGMA quick_check passed in {Elapsed} ms",
                DatabasePath, why, clock.ElapsedMilliseconds);
            return;
        }
        var name = Path.GetFileName(DatabasePath);
        Report(new GroupStoreProblem(GroupStoreProblemKind.Corrupt,
            $"SQLite group store {DatabasePath} is damaged: PRAGMA quick_check failed on an unclean start ({why}): {failures}. " +
            "Committed offsets and group metadata in it may be wrong or unreadable. To recover: stop the broker and restore " +
            $"{name} (with its {name}-wal, if any) from a backup; or start once with offset.store.accept.loss=true, save every group's " +
            "offsets that can still be read with `cairn offsets export GROUP > GROUP.csv`, stop, move " +
            $"{name}, {name}-wal and {Path.GetFileName(_record.Path)} aside, start, and load them back with `cairn offsets import GROUP GROUP.csv --execute`."),
            $"offset store {DatabasePath} is damaged (PRAGMA quick_check failed)");
    }

    /// <summary>Lost writes: the database's sequence (read before migrating, which would write) below the recorded one.</summary>
    private async Task CheckWriteSequenceAsync(CancellationToken cancellationToken)
    {
        if (_previous is not { } recorded || recorded.Sequence == 0) return;
        long sequence;
        try
        {
            sequence = await ReadWriteSequenceBeforeMigrationAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException) when (IntegrityProblem is not null)
        {
            return; // a damaged file the operator chose to start on anyway: already reported
        }
        if (sequence < recorded.Sequence)
        {
            var name = Path.GetFileName(DatabasePath);
            var cause = _databaseExisted
                ? $"the write-ahead log {name}-wal was probably truncated or deleted after an unclean stop, or {name} was replaced by an older copy"
                : $"{name} did not exist and was created empty";
            Report(new GroupStoreProblem(GroupStoreProblemKind.WritesLost,
                $"SQLite group store {DatabasePath}: acknowledged writes were lost: the database's write sequence is {sequence}, but " +
                $"{Path.GetFileName(_record.Path)} recorded {recorded.Sequence} as durable at {recorded.Written:u}, so at least " +
                $"{recorded.Sequence - sequence} write transaction(s) (offset commits, offset deletions, group changes) are gone: {cause}. " +
                "Consumers of the affected groups would restart from their auto.offset.reset position. To recover: stop, put back the " +
                $"original {name} and {name}-wal (or restore a backup) and start again; or accept the loss with offset.store.accept.loss=true " +
                "and set the groups' offsets again with `cairn offsets import GROUP FILE --execute` (from an earlier `cairn offsets export`) " +
                $"or `cairn groups reset-offsets`. To start over on purpose, delete {name}, {name}-wal and {Path.GetFileName(_record.Path)} together."),
                $"offset store {DatabasePath}: committed offsets were lost (write sequence {sequence}, {recorded.Sequence} recorded in {Path.GetFileName(_record.Path)})");
        }
    }

    private protected override Task AfterMigrateAsync(CancellationToken cancellationToken)
    {
        _record.Start(_options.WriteRecordInterval);
        _recordStarted = true;
        return Task.CompletedTask;
    }

    /// <summary>Fails the start, or with <see cref="SqliteGroupStoreOptions.AcceptLoss"/> reports the problem and goes on.</summary>
    private void Report(GroupStoreProblem problem, string summary)
    {
        if (_options.AcceptLoss)
        {
            Logger.LogError("{Problem} Starting anyway because offset.store.accept.loss=true; remove that setting once the offsets are set again.", problem.Message);
            IntegrityProblem ??= problem;
            return;
        }
        Logger.LogError("{Problem} The broker does not start on it, so that consumers are not silently reset and nothing is overwritten; " +
                        "offset.store.accept.loss=true starts it anyway.", problem.Message);
        throw new GroupStoreIntegrityException(problem, $"{summary}; see the error above, or set offset.store.accept.loss=true to start anyway");
    }

    /// <summary>Runs <c>PRAGMA quick_check</c> (on the writer, which recovers the write-ahead log first); null when it passes,
    /// else what it found.</summary>
    private async Task<string?> QuickCheckAsync(CancellationToken cancellationToken)
    {
        const int SqliteCorrupt = 11, SqliteNotADatabase = 26;
        try
        {
            List<string> lines = [];
            await Database.WriteAsync(async (connection, _, ct) =>
            {
                await using var command = SqlDatabase.Command(connection, null, $"PRAGMA quick_check({MaxQuickCheckLines})");
                lines = await SqlDatabase.ReadRowsAsync(command, r => r.GetString(0), ct).ConfigureAwait(false);
            }, transaction: false, cancellationToken).ConfigureAwait(false);
            return lines is ["ok"] ? null : lines.Count == 0 ? "no result" : string.Join("; ", lines);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is SqliteCorrupt or SqliteNotADatabase)
        {
            return e.Message;
        }
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
        new(WriteAsync((connection, tx, _) =>
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

    private protected override ValueTask DisposeCoreAsync(bool databaseClosed)
    {
        _upsert?.Command.Dispose();
        _upsert = null;
        // Closed without error: every commit is in the main file (the last connection checkpoints), so the next start
        // need not check it. A store whose start failed never started the record: it still describes the previous run.
        if (_recordStarted) _record.Close(clean: databaseClosed);
        return ValueTask.CompletedTask;
    }
}
