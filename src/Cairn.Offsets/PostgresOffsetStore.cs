using System.Data.Common;
using Cairn.Sql;
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

    private readonly PostgresDatabase _database;

    /// <summary>A store with its own data source (connection pool) built from <paramref name="connectionString"/>.</summary>
    public PostgresOffsetStore(string connectionString, PostgresOffsetStoreOptions? options = null)
        : this(PostgresDatabase.Create(connectionString ?? throw new ArgumentNullException(nameof(connectionString))), options)
    {
    }

    /// <summary>A store on the caller's data source (not disposed with the store).</summary>
    public PostgresOffsetStore(NpgsqlDataSource dataSource, PostgresOffsetStoreOptions? options = null)
        : this(new PostgresDatabase(dataSource ?? throw new ArgumentNullException(nameof(dataSource)), ownsDataSource: false), options)
    {
    }

    private PostgresOffsetStore(PostgresDatabase database, PostgresOffsetStoreOptions? options)
        : base((options ?? new PostgresOffsetStoreOptions()).ConsumerName, database, CheckSchema(options?.Schema), MigrationLockKey)
    {
        _database = database;
    }

    private static string? CheckSchema(string? schema) =>
        schema is { Length: 0 } ? throw new ArgumentException("Schema cannot be empty (use null for the search_path)", "options") : schema;

    /// <summary>Opens the store and creates or migrates its schema now.</summary>
    public static Task<PostgresOffsetStore> OpenAsync(string connectionString, PostgresOffsetStoreOptions? options = null, CancellationToken cancellationToken = default) =>
        MigratedAsync(new PostgresOffsetStore(connectionString, options), cancellationToken);

    public override string Description => $"PostgreSQL database '{_database.Database}' on {_database.Host}:{_database.Port}";

    /// <summary>An open connection from the store's data source; the caller disposes it.</summary>
    public new async ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        (NpgsqlConnection)await base.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    private protected override void CheckTransaction(DbTransaction transaction)
    {
        if (transaction is not NpgsqlTransaction { Connection: { } connection })
            throw new ArgumentException($"a PostgresOffsetStore commits inside an NpgsqlTransaction, not a {transaction.GetType().Name}", nameof(transaction));
        if (!string.Equals(connection.Database, _database.Database, StringComparison.Ordinal))
            throw new ArgumentException(
                $"the transaction is on database '{connection.Database}', but the store keeps its offsets in '{_database.Database}': " +
                "the offset would not commit atomically with it", nameof(transaction));
    }
}
