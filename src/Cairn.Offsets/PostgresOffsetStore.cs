using System.Data.Common;
using Npgsql;

namespace Cairn.Offsets;

public sealed class PostgresOffsetStoreOptions
{
    /// <summary>Whose offsets these are (default "default"); several consumers can share one table.</summary>
    public string ConsumerName { get; set; } = "default";

    /// <summary>The PostgreSQL schema holding the store's tables (created if missing); null: the connection's search_path.</summary>
    public string? Schema { get; set; }
}

/// <summary>
/// Offsets in PostgreSQL (Npgsql), in table <c>cairn_offsets</c>. Concurrent openers migrate one at a time (a
/// transaction-scoped advisory lock). Keep a pipeline's results in the same database and commit both in one
/// transaction (<see cref="DbOffsetStore.CommitAsync(string, Offset, DbTransaction, CancellationToken)"/>) for
/// exactly-once results.
/// </summary>
public sealed class PostgresOffsetStore : DbOffsetStore
{
    /// <summary>The advisory lock key held while migrating ("cairnoff" in ASCII).</summary>
    private const long MigrationLockKey = 0x636169726e6f6666;

    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly string? _schema;
    private readonly IReadOnlyList<IReadOnlyList<string>> _migrations;

    /// <summary>A store with its own data source (connection pool) built from <paramref name="connectionString"/>.</summary>
    public PostgresOffsetStore(string connectionString, PostgresOffsetStoreOptions? options = null)
        : this(NpgsqlDataSource.Create(connectionString ?? throw new ArgumentNullException(nameof(connectionString))), ownsDataSource: true, options)
    {
    }

    /// <summary>A store on the caller's data source (not disposed with the store).</summary>
    public PostgresOffsetStore(NpgsqlDataSource dataSource, PostgresOffsetStoreOptions? options = null)
        : this(dataSource ?? throw new ArgumentNullException(nameof(dataSource)), ownsDataSource: false, options)
    {
    }

    private PostgresOffsetStore(NpgsqlDataSource dataSource, bool ownsDataSource, PostgresOffsetStoreOptions? options)
        : base((options ?? new PostgresOffsetStoreOptions()).ConsumerName)
    {
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
        _schema = options?.Schema;
        if (_schema is { Length: 0 }) throw new ArgumentException("Schema cannot be empty (use null for the search_path)", nameof(options));
        var prefix = _schema is null ? "" : Quote(_schema) + ".";
        _migrations =
        [
            // 1: the offsets table.
            [
                $"CREATE TABLE {prefix}cairn_offsets (consumer TEXT NOT NULL, source TEXT NOT NULL, offset_value TEXT NOT NULL, PRIMARY KEY (consumer, source))",
            ],
            // 2: when each offset was committed.
            [
                $"ALTER TABLE {prefix}cairn_offsets ADD COLUMN committed_at TIMESTAMPTZ",
            ],
        ];
    }

    /// <summary>Opens the store and creates or migrates its schema now.</summary>
    public static async Task<PostgresOffsetStore> OpenAsync(string connectionString, PostgresOffsetStoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        var store = new PostgresOffsetStore(connectionString, options);
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

    public override string Description
    {
        get
        {
            var builder = new NpgsqlConnectionStringBuilder(_dataSource.ConnectionString);
            return $"PostgreSQL database '{builder.Database}' on {builder.Host}:{builder.Port}";
        }
    }

    /// <summary>An open connection from the store's data source; the caller disposes it.</summary>
    public new async ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        (NpgsqlConnection)await base.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    protected override IReadOnlyList<IReadOnlyList<string>> Migrations => _migrations;

    protected override string SchemaTableExistsSql =>
        $"SELECT to_regclass('{(_schema is null ? "" : Quote(_schema).Replace("'", "''") + ".")}{SchemaTable}') IS NOT NULL";

    protected override string Table(string name) => _schema is null ? name : Quote(_schema) + "." + name;

    protected override string UpsertSql =>
        $"INSERT INTO {Table(OffsetsTable)} (consumer, source, offset_value, committed_at) VALUES (@consumer, @source, @offset, now()) " +
        "ON CONFLICT (consumer, source) DO UPDATE SET offset_value = EXCLUDED.offset_value, committed_at = EXCLUDED.committed_at";

    protected override async ValueTask<DbConnection> CreateConnectionAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    protected override async Task<DbTransaction> BeginMigrationAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var transaction = await ((NpgsqlConnection)connection).BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({MigrationLockKey})", (NpgsqlConnection)connection, transaction);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (_schema is not null)
            {
                await using var create = new NpgsqlCommand($"CREATE SCHEMA IF NOT EXISTS {Quote(_schema)}", (NpgsqlConnection)connection, transaction);
                await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            return transaction;
        }
        catch
        {
            await transaction.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    protected override void CheckTransaction(DbTransaction transaction)
    {
        if (transaction is not NpgsqlTransaction { Connection: { } connection })
            throw new ArgumentException($"a PostgresOffsetStore commits inside an NpgsqlTransaction, not a {transaction.GetType().Name}", nameof(transaction));
        var mine = new NpgsqlConnectionStringBuilder(_dataSource.ConnectionString);
        if (!string.Equals(connection.Database, mine.Database, StringComparison.Ordinal))
            throw new ArgumentException(
                $"the transaction is on database '{connection.Database}', but the store keeps its offsets in '{mine.Database}': " +
                "the offset would not commit atomically with it", nameof(transaction));
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"") + "\"";
}
