using System.Data.Common;
using Cairn.Offsets.Internal;

namespace Cairn.Offsets;

/// <summary>
/// The shared machinery of the SQL stores (<see cref="SqliteOffsetStore"/>, <see cref="PostgresOffsetStore"/>): a table
/// <c>cairn_offsets (consumer, source, offset_value, committed_at)</c> keyed by consumer name and source, created and
/// migrated on open (versions recorded in <c>cairn_offsets_schema</c>, migrations applied in order, in one transaction),
/// and commits inside the caller's own transaction so an offset and the results it covers are written atomically.
/// </summary>
public abstract class DbOffsetStore : IOffsetStore
{
    protected const string OffsetsTable = "cairn_offsets";
    protected const string SchemaTable = "cairn_offsets_schema";

    private readonly AsyncInit _init;
    private int _disposed;

    protected DbOffsetStore(string consumerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(consumerName);
        ConsumerName = consumerName;
        _init = new AsyncInit(MigrateCoreAsync);
    }

    /// <summary>Whose offsets these are: several consumers can keep theirs in one table.</summary>
    public string ConsumerName { get; }

    /// <summary>The schema version this library creates (the number of migrations).</summary>
    public int LatestSchemaVersion => Migrations.Count;

    /// <summary>Names the database in messages, e.g. "SQLite database '/data/app.db'".</summary>
    public abstract string Description { get; }

    /// <summary>Migration scripts, version 1 first: each a list of statements run in the migration transaction.</summary>
    protected abstract IReadOnlyList<IReadOnlyList<string>> Migrations { get; }

    /// <summary>Opens a new connection to the store's database.</summary>
    protected abstract ValueTask<DbConnection> CreateConnectionAsync(CancellationToken cancellationToken);

    /// <summary>Starts the migration transaction and takes whatever lock keeps concurrent openers from migrating together.</summary>
    protected abstract Task<DbTransaction> BeginMigrationAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>SQL that tells whether the schema version table exists (a scalar: non-zero/true when it does).</summary>
    protected abstract string SchemaTableExistsSql { get; }

    /// <summary>The qualified name of a store table.</summary>
    protected abstract string Table(string name);

    /// <summary>Upsert of @consumer, @source, @offset.</summary>
    protected abstract string UpsertSql { get; }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="transaction"/> is not one of this store's kind or database.</summary>
    protected abstract void CheckTransaction(DbTransaction transaction);

    /// <summary>Serializes this process's writes (SQLite: one writer at a time anyway). Default: none.</summary>
    protected virtual SemaphoreSlim? WriteGate => null;

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
            await using var connection = await CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await ReadSchemaVersionAsync(connection, null, cancellationToken).ConfigureAwait(false);
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
            return await CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
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
            await using var connection = await CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await SelectAsync(connection, null, source, cancellationToken).ConfigureAwait(false);
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
            await using var connection = await CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = Command(connection, null,
                $"SELECT source, offset_value FROM {Table(OffsetsTable)} WHERE consumer = @consumer ORDER BY source");
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var result = new Dictionary<string, Offset>(StringComparer.Ordinal);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var source = reader.GetString(0);
                result[source] = ParseStored(source, reader.GetString(1));
            }
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
        await WriteAsync(source, "commit the offset to", async (connection, ct) =>
        {
            await using var command = Command(connection, null, UpsertSql, source, offset);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
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
            await using var command = Command(connection, transaction, UpsertSql, source, offset);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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
            await using var command = Command(connection, transaction,
                $"DELETE FROM {Table(OffsetsTable)} WHERE consumer = @consumer AND source = @source", source);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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
        await WriteAsync(source, "clear the offset in", async (connection, ct) =>
        {
            await using var command = Command(connection, null,
                $"DELETE FROM {Table(OffsetsTable)} WHERE consumer = @consumer AND source = @source", source);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask ClearAllAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(null, "clear the offsets in", async (connection, ct) =>
        {
            await using var command = Command(connection, null, $"DELETE FROM {Table(OffsetsTable)} WHERE consumer = @consumer");
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await DisposeCoreAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what the concrete store owns (data sources, pools).</summary>
    protected virtual ValueTask DisposeCoreAsync() => ValueTask.CompletedTask;

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
                version = await ReadSchemaVersionAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
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

    private async Task WriteAsync(string? source, string what, Func<DbConnection, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var gate = WriteGate;
        if (gate is not null) await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
            await write(connection, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw Failure(source, what, ex);
        }
        finally
        {
            gate?.Release();
        }
    }

    private async Task<Offset?> SelectAsync(DbConnection connection, DbTransaction? transaction, string source, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction,
            $"SELECT offset_value FROM {Table(OffsetsTable)} WHERE consumer = @consumer AND source = @source", source);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is null or DBNull ? null : ParseStored(source, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!);
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
            await using var connection = await CreateConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var transaction = await BeginMigrationAsync(connection, CancellationToken.None).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction,
                $"CREATE TABLE IF NOT EXISTS {Table(SchemaTable)} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)").ConfigureAwait(false);
            var current = await ReadSchemaVersionAsync(connection, transaction, CancellationToken.None).ConfigureAwait(false);
            if (current > Migrations.Count)
                throw new OffsetStoreException(
                    $"the offsets schema of {Description} is at version {current}, newer than the {Migrations.Count} this version of Cairn.Offsets knows: upgrade Cairn.Offsets");
            for (int version = current + 1; version <= Migrations.Count; version++)
            {
                foreach (var statement in Migrations[version - 1])
                    await ExecuteAsync(connection, transaction, statement).ConfigureAwait(false);
                await using var record = connection.CreateCommand();
                record.Transaction = transaction;
                record.CommandText = $"INSERT INTO {Table(SchemaTable)} (version, applied_at) VALUES (@version, @applied_at)";
                AddParameter(record, "version", version);
                AddParameter(record, "applied_at", DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                await record.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            await transaction.CommitAsync().ConfigureAwait(false);
        }
        catch (DbException ex)
        {
            throw new OffsetStoreIOException($"could not create or migrate the offsets schema in {Description}: {ex.Message}", null, ex);
        }
    }

    private async Task<int> ReadSchemaVersionAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        await using (var exists = Command(connection, transaction, SchemaTableExistsSql))
        {
            var result = await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (result is null or DBNull || result is false || (result is IConvertible c and not bool && c.ToInt64(null) == 0)) return 0;
        }
        await using var command = Command(connection, transaction, $"SELECT COALESCE(MAX(version), 0) FROM {Table(SchemaTable)}");
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction transaction, string sql)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, string? source = null, Offset? offset = null)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        if (sql.Contains("@consumer", StringComparison.Ordinal)) AddParameter(command, "consumer", ConsumerName);
        if (source is not null) AddParameter(command, "source", source);
        if (offset is { } o) AddParameter(command, "offset", o.ToString());
        return command;
    }

    private static void AddParameter(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private OffsetStoreIOException Failure(string? source, string what, DbException ex) =>
        new(OffsetStoreException.Describe(source, $"could not {what} {Description}: {ex.Message}"), source, ex);
}
