using System.Data.Common;
using Cairn.Offsets.Internal;
using Cairn.Sql;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Offsets;

/// <summary>
/// The SQL stores (<see cref="SqliteOffsetStore"/>, <see cref="PostgresOffsetStore"/>), on Cairn.Sql: a table
/// <c>cairn_offsets (consumer, source, offset_value, committed_at)</c> keyed by consumer name and source, created and
/// migrated on open (versions recorded in <c>cairn_offsets_schema</c>, migrations applied in order, in one transaction),
/// and commits inside the caller's own transaction so an offset and the results it covers are written atomically.
/// Commits made concurrently outside such transactions share one database transaction (group commit).
/// </summary>
/// <remarks>Only the two stores of this library derive from it: what an engine needs is Cairn.Sql's business.</remarks>
public abstract class DbOffsetStore : IOffsetStore
{
    protected const string OffsetsTable = "cairn_offsets";
    protected const string SchemaTable = "cairn_offsets_schema";

    /// <summary>Most commits one group-commit transaction writes.</summary>
    private const int MaxBatchCommits = 4096;

    private readonly SqlDatabase _database;
    private readonly SqlSchemaHistory _history;
    private readonly string _table;
    private readonly string _upsertSql;
    private readonly AsyncInit _init;
    private readonly CommitBatcher<(string Source, Offset Offset)> _batcher;
    private int _disposed;

    /// <param name="schema">The schema (namespace) holding the tables; null for the connection's default.</param>
    /// <param name="migrationLockKey">Identifies this store's migrations where the engine locks by key.</param>
    private protected DbOffsetStore(string consumerName, SqlDatabase database, string? schema, long migrationLockKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(consumerName);
        ConsumerName = consumerName;
        _database = database;
        var d = database.Dialect;
        _table = d.QualifiedName(schema, OffsetsTable);
        _history = new SqlSchemaHistory("offsets store", schema, SchemaTable, new SqlColumn("applied_at", SqlType.Text), migrationLockKey,
        [
            // 1: the offsets table.
            new(1, [d.CreateTableSql(new SqlTable(OffsetsTable,
                [new("consumer", SqlType.Text), new("source", SqlType.Text), new("offset_value", SqlType.Text)], ["consumer", "source"]), schema)]),
            // 2: when each offset was committed.
            new(2, [d.AddColumnSql(schema, OffsetsTable, new SqlColumn("committed_at", SqlType.Timestamp, Nullable: true))]),
        ]);
        _upsertSql = d.UpsertSql(_table,
            [("consumer", "@consumer"), ("source", "@source"), ("offset_value", "@offset"), ("committed_at", d.NowSql(SqlType.Timestamp))],
            ["consumer", "source"]);
        _init = new AsyncInit(MigrateCoreAsync);
        _batcher = new CommitBatcher<(string, Offset)>(WriteCommitsAsync, NullLogger.Instance, MaxBatchCommits, "offset commit");
    }

    /// <summary>Whose offsets these are: several consumers can keep theirs in one table.</summary>
    public string ConsumerName { get; }

    /// <summary>The schema version this library creates (the number of migrations).</summary>
    public int LatestSchemaVersion => _history.Latest;

    /// <summary>Names the database in messages, e.g. "SQLite database '/data/app.db'".</summary>
    public abstract string Description { get; }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="transaction"/> is not one of this store's kind or database.</summary>
    private protected abstract void CheckTransaction(DbTransaction transaction);

    /// <summary><paramref name="store"/> once its schema is migrated; disposed if that fails.</summary>
    private protected static async Task<TStore> MigratedAsync<TStore>(TStore store, CancellationToken cancellationToken) where TStore : DbOffsetStore
    {
        try
        {
            await store.MigrateAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates or migrates the schema now (otherwise done on first use).</summary>
    public Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _init.EnsureAsync(cancellationToken);
    }

    /// <summary>The schema version the database is at (0 when the store's tables do not exist yet).</summary>
    public async Task<int> GetSchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            await using var connection = await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await SqlMigrationRunner.ReadVersionAsync(connection, null, _database.Dialect, _history, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw new OffsetStoreIOException($"could not read the offsets schema version of {Description}: {ex.Message}", null, ex);
        }
    }

    /// <summary>
    /// An open connection to the store's database (schema migrated), for the caller's own work: begin a transaction
    /// on it, write results, call <see cref="CommitAsync(string, Offset, DbTransaction, CancellationToken)"/>, commit.
    /// The caller disposes it.
    /// </summary>
    public async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await _database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw new OffsetStoreIOException($"could not connect to {Description}: {ex.Message}", null, ex);
        }
    }

    public async ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await _database.ReadAsync((connection, ct) => SelectAsync(connection, null, source, ct), cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, "read the offset from", ex);
        }
    }

    /// <summary>The offset stored for <paramref name="source"/> as seen inside the caller's transaction.</summary>
    public async ValueTask<Offset?> GetAsync(string source, DbTransaction transaction, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        var connection = await PrepareCallerTransactionAsync(transaction, cancellationToken).ConfigureAwait(false);
        try
        {
            return await SelectAsync(connection, transaction, source, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, "read the offset from", ex);
        }
    }

    public async ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var rows = await _database.ReadAsync(async (connection, ct) =>
            {
                await using var command = SqlDatabase.Command(connection, null,
                    $"SELECT source, offset_value FROM {_table} WHERE consumer = @consumer ORDER BY source", ("consumer", ConsumerName));
                return await SqlDatabase.ReadRowsAsync(command, r => (Source: r.GetString(0), Text: r.GetString(1)), ct).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            var result = new Dictionary<string, Offset>(StringComparer.Ordinal);
            foreach (var (source, text) in rows) result[source] = ParseStored(source, text);
            return result;
        }
        catch (DbException ex)
        {
            throw Failure(null, "read the offsets from", ex);
        }
    }

    public async ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _batcher.EnqueueAsync((source, offset), 1, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, "commit the offset to", ex);
        }
    }

    /// <summary>
    /// Writes the offset inside the caller's open transaction (on its connection, which must be to this store's
    /// database): it becomes durable when, and only if, the caller commits that transaction, atomically with the
    /// caller's own writes. Results kept in the same database are then produced exactly once: after a crash the stored
    /// offset is exactly the position after the last results that were committed.
    /// </summary>
    /// <remarks>Open the store (OpenAsync or <see cref="MigrateAsync"/>) before starting such transactions: the
    /// schema cannot be created from inside them.</remarks>
    public async ValueTask CommitAsync(string source, Offset offset, DbTransaction transaction, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        var connection = await PrepareCallerTransactionAsync(transaction, cancellationToken).ConfigureAwait(false);
        try
        {
            await Upsert(connection, transaction, source, offset, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, "commit the offset (in the caller's transaction) to", ex);
        }
    }

    /// <summary>Forgets <paramref name="source"/>'s offset inside the caller's transaction.</summary>
    public async ValueTask ClearAsync(string source, DbTransaction transaction, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        var connection = await PrepareCallerTransactionAsync(transaction, cancellationToken).ConfigureAwait(false);
        try
        {
            await Delete(connection, transaction, source, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, "clear the offset (in the caller's transaction) in", ex);
        }
    }

    public async ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(source, "clear the offset in", (connection, ct) => Delete(connection, null, source, ct), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask ClearAllAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(null, "clear the offsets in", (connection, ct) => Delete(connection, null, null, ct), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _batcher.CompleteAsync().ConfigureAwait(false); // write what is queued
        await _database.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private async ValueTask ReadyAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (!_init.IsCompleted) await _init.EnsureAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<DbConnection> PrepareCallerTransactionAsync(DbTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ThrowIfDisposed();
        var connection = transaction.Connection
            ?? throw new ArgumentException("the transaction is already committed or rolled back (it has no connection)", nameof(transaction));
        CheckTransaction(transaction);
        if (!_init.IsCompleted)
        {
            // Migrating now would need locks the caller's transaction may hold; only check that the schema is there.
            int version;
            try
            {
                version = await SqlMigrationRunner.ReadVersionAsync(connection, transaction, _database.Dialect, _history, cancellationToken).ConfigureAwait(false);
            }
            catch (DbException ex)
            {
                throw Failure(null, "read the offsets schema version of", ex);
            }
            if (version != LatestSchemaVersion)
                throw new InvalidOperationException(
                    $"the offsets schema of {Description} is at version {version}, not {LatestSchemaVersion}: open the store " +
                    "(OpenAsync or MigrateAsync) before committing offsets inside your own transactions");
        }
        return connection;
    }

    /// <summary>One group-commit transaction: the commits in the order they were made (a later one of a source wins).</summary>
    private ValueTask WriteCommitsAsync(List<PendingCommit<(string Source, Offset Offset)>> batch) =>
        new(_database.WriteAsync(async (connection, transaction, ct) =>
        {
            foreach (var pending in batch)
                await Upsert(connection, transaction, pending.Item.Source, pending.Item.Offset, ct).ConfigureAwait(false);
        }, transaction: true, CancellationToken.None));

    private async Task WriteAsync(string? source, string what, Func<DbConnection, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        try
        {
            await _database.WriteAsync((connection, _, ct) => write(connection, ct), transaction: false, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, what, ex);
        }
    }

    private Task<int> Upsert(DbConnection connection, DbTransaction? transaction, string source, Offset offset, CancellationToken cancellationToken) =>
        SqlDatabase.ExecuteAsync(connection, transaction, _upsertSql, cancellationToken,
            ("consumer", ConsumerName), ("source", source), ("offset", offset.ToString()));

    /// <summary>Deletes <paramref name="source"/>'s offset, or every offset of the consumer when it is null.</summary>
    private Task<int> Delete(DbConnection connection, DbTransaction? transaction, string? source, CancellationToken cancellationToken) =>
        source is null
            ? SqlDatabase.ExecuteAsync(connection, transaction, $"DELETE FROM {_table} WHERE consumer = @consumer", cancellationToken,
                ("consumer", ConsumerName))
            : SqlDatabase.ExecuteAsync(connection, transaction, $"DELETE FROM {_table} WHERE consumer = @consumer AND source = @source", cancellationToken,
                ("consumer", ConsumerName), ("source", source));

    private async Task<Offset?> SelectAsync(DbConnection connection, DbTransaction? transaction, string source, CancellationToken cancellationToken)
    {
        var value = await SqlDatabase.ScalarAsync(connection, transaction,
            $"SELECT offset_value FROM {_table} WHERE consumer = @consumer AND source = @source", cancellationToken,
            ("consumer", ConsumerName), ("source", source)).ConfigureAwait(false);
        return value is null ? null : ParseStored(source, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!);
    }

    private Offset ParseStored(string source, string text)
    {
        try
        {
            if (Offset.TryParse(text, out var offset)) return offset;
        }
        catch (InvalidOffsetException)
        {
        }
        throw new OffsetSerializationException(
            $"table {OffsetsTable} of {Description} holds '{text}' for source '{source}' (consumer '{ConsumerName}'), which is not an offset",
            source, $"{Description}, table {OffsetsTable}");
    }

    private async Task MigrateCoreAsync()
    {
        try
        {
            await SqlMigrationRunner.MigrateAsync(_database, _history, null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (SqlSchemaTooNewException ex)
        {
            throw new OffsetStoreException(
                $"the offsets schema of {Description} is at version {ex.Found}, newer than the {ex.Known} this version of Cairn.Offsets knows: upgrade Cairn.Offsets");
        }
        catch (DbException ex)
        {
            throw new OffsetStoreIOException($"could not create or migrate the offsets schema in {Description}: {ex.Message}", null, ex);
        }
    }

    private OffsetStoreIOException Failure(string? source, string what, DbException ex) =>
        new(OffsetStoreException.Describe(source, $"could not {what} {Description}: {ex.Message}"), source, ex);
}
