using System.Data.Common;
using Cairn.Sql;
using Microsoft.Data.Sqlite;

namespace Cairn.Offsets;

public sealed class SqliteOffsetStoreOptions
{
    /// <summary>Whose offsets these are (default "default"); several consumers can share one database.</summary>
    public string ConsumerName { get; set; } = "default";

    /// <summary>How long a statement waits for another connection's write lock. Default 30 s.</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Switch the database to write-ahead logging on open (readers do not block the writer). Default true.</summary>
    public bool UseWriteAheadLog { get; set; } = true;
}

/// <summary>
/// Offsets in a SQLite database (Microsoft.Data.Sqlite), in table <c>cairn_offsets</c>, with synchronous=FULL so a
/// returned commit survives power loss. Keep the results of a pipeline in the same database and commit both in one
/// transaction (<see cref="DbOffsetStore.CommitAsync(string, Offset, DbTransaction, CancellationToken)"/>) for
/// exactly-once results. Use a database file: each connection to ":memory:" is a different database.
/// </summary>
public sealed class SqliteOffsetStore : DbOffsetStore
{
    private readonly SqliteDatabase _database;

    /// <param name="connectionString">A Microsoft.Data.Sqlite connection string, e.g. "Data Source=/data/offsets.db".</param>
    public SqliteOffsetStore(string connectionString, SqliteOffsetStoreOptions? options = null)
        : this(Open(connectionString, options ??= new SqliteOffsetStoreOptions()), options)
    {
    }

    private SqliteOffsetStore(SqliteDatabase database, SqliteOffsetStoreOptions options)
        : base(options.ConsumerName, database, schema: null, migrationLockKey: 0)
    {
        _database = database;
    }

    private static SqliteDatabase Open(string connectionString, SqliteOffsetStoreOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return new SqliteDatabase(new SqliteDatabaseOptions
        {
            ConnectionString = connectionString,
            BusyTimeout = options.BusyTimeout,
            UseWriteAheadLog = options.UseWriteAheadLog,
        });
    }

    /// <summary>A store on the database file at <paramref name="path"/> (created if missing).</summary>
    public static SqliteOffsetStore ForFile(string path, SqliteOffsetStoreOptions? options = null) =>
        new(new SqliteConnectionStringBuilder { DataSource = Path.GetFullPath(path), Mode = SqliteOpenMode.ReadWriteCreate }.ConnectionString, options);

    /// <summary>Opens the store and creates or migrates its schema now.</summary>
    public static Task<SqliteOffsetStore> OpenAsync(string connectionString, SqliteOffsetStoreOptions? options = null, CancellationToken cancellationToken = default) =>
        MigratedAsync(new SqliteOffsetStore(connectionString, options), cancellationToken);

    /// <summary>The database file (the connection string's Data Source).</summary>
    public string DataSource => _database.DataSource;

    public override string Description => $"SQLite database '{DataSource}'";

    /// <summary>An open connection configured like the store's own (busy timeout, synchronous=FULL); the caller disposes it.</summary>
    public new async ValueTask<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        (SqliteConnection)await base.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    private protected override void CheckTransaction(DbTransaction transaction)
    {
        if (transaction is not SqliteTransaction { Connection: { } connection })
            throw new ArgumentException($"a SqliteOffsetStore commits inside a SqliteTransaction, not a {transaction.GetType().Name}", nameof(transaction));
        if (!SameFile(connection.DataSource, DataSource))
            throw new ArgumentException(
                $"the transaction is on SQLite database '{connection.DataSource}', but the store keeps its offsets in '{DataSource}': " +
                "the offset would not commit atomically with it", nameof(transaction));
    }

    private static bool SameFile(string a, string b)
    {
        if (string.Equals(a, b, StringComparison.Ordinal)) return true;
        if (string.IsNullOrEmpty(a) || string.IsNullOrEmpty(b) || a.StartsWith(':') || b.StartsWith(':')) return false;
        try
        {
            return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b),
                OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return false;
        }
    }
}
