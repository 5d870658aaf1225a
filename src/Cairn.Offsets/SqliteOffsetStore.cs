using System.Data.Common;
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
    private static readonly IReadOnlyList<IReadOnlyList<string>> s_migrations =
    [
        // 1: the offsets table.
        [
            "CREATE TABLE cairn_offsets (consumer TEXT NOT NULL, source TEXT NOT NULL, offset_value TEXT NOT NULL, PRIMARY KEY (consumer, source))",
        ],
        // 2: when each offset was committed.
        [
            "ALTER TABLE cairn_offsets ADD COLUMN committed_at TEXT",
        ],
    ];

    private readonly string _connectionString;
    private readonly SqliteOffsetStoreOptions _options;
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    static SqliteOffsetStore() => SQLitePCL.Batteries_V2.Init();

    /// <param name="connectionString">A Microsoft.Data.Sqlite connection string, e.g. "Data Source=/data/offsets.db".</param>
    public SqliteOffsetStore(string connectionString, SqliteOffsetStoreOptions? options = null)
        : base((options ?? new SqliteOffsetStoreOptions()).ConsumerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        _options = options ?? new SqliteOffsetStoreOptions();
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.DefaultTimeout == 30 && _options.BusyTimeout != TimeSpan.FromSeconds(30))
            builder.DefaultTimeout = (int)Math.Ceiling(_options.BusyTimeout.TotalSeconds);
        _connectionString = builder.ConnectionString;
        DataSource = builder.DataSource;
    }

    /// <summary>A store on the database file at <paramref name="path"/> (created if missing).</summary>
    public static SqliteOffsetStore ForFile(string path, SqliteOffsetStoreOptions? options = null) =>
        new(new SqliteConnectionStringBuilder { DataSource = Path.GetFullPath(path), Mode = SqliteOpenMode.ReadWriteCreate }.ConnectionString, options);

    /// <summary>Opens the store and creates or migrates its schema now.</summary>
    public static async Task<SqliteOffsetStore> OpenAsync(string connectionString, SqliteOffsetStoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        var store = new SqliteOffsetStore(connectionString, options);
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

    /// <summary>The database file (the connection string's Data Source).</summary>
    public string DataSource { get; }

    public override string Description => $"SQLite database '{DataSource}'";

    /// <summary>An open connection configured like the store's own (busy timeout, synchronous=FULL); the caller disposes it.</summary>
    public new async ValueTask<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) =>
        (SqliteConnection)await base.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    protected override IReadOnlyList<IReadOnlyList<string>> Migrations => s_migrations;

    protected override SemaphoreSlim? WriteGate => _writeGate;

    protected override string SchemaTableExistsSql => $"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{SchemaTable}'";

    protected override string Table(string name) => name;

    protected override string UpsertSql =>
        $"INSERT INTO {OffsetsTable} (consumer, source, offset_value, committed_at) " +
        "VALUES (@consumer, @source, @offset, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) " +
        "ON CONFLICT (consumer, source) DO UPDATE SET offset_value = excluded.offset_value, committed_at = excluded.committed_at";

    protected override async ValueTask<DbConnection> CreateConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = $"PRAGMA busy_timeout = {(long)_options.BusyTimeout.TotalMilliseconds}; PRAGMA synchronous = FULL;";
            await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    protected override async Task<DbTransaction> BeginMigrationAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        if (_options.UseWriteAheadLog)
        {
            await using var wal = connection.CreateCommand();
            wal.CommandText = "PRAGMA journal_mode = WAL";
            await wal.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        // BEGIN IMMEDIATE: the write lock up front, so two processes opening at once migrate one after the other.
        return ((SqliteConnection)connection).BeginTransaction(deferred: false);
    }

    protected override void CheckTransaction(DbTransaction transaction)
    {
        if (transaction is not SqliteTransaction { Connection: { } connection })
            throw new ArgumentException($"a SqliteOffsetStore commits inside a SqliteTransaction, not a {transaction.GetType().Name}", nameof(transaction));
        if (!SameFile(connection.DataSource, DataSource))
            throw new ArgumentException(
                $"the transaction is on SQLite database '{connection.DataSource}', but the store keeps its offsets in '{DataSource}': " +
                "the offset would not commit atomically with it", nameof(transaction));
    }

    protected override ValueTask DisposeCoreAsync()
    {
        using (var connection = new SqliteConnection(_connectionString)) SqliteConnection.ClearPool(connection);
        _writeGate.Dispose();
        return ValueTask.CompletedTask;
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
