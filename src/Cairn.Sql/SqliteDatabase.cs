using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Cairn.Sql;

internal sealed record SqliteDatabaseOptions
{
    /// <summary>A Microsoft.Data.Sqlite connection string naming a database file.</summary>
    public required string ConnectionString { get; init; }

    /// <summary>How long a statement waits for a lock held by another connection or process (SQLite busy timeout).</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Switch the file to write-ahead logging when the writer opens (readers then never block the writer).</summary>
    public bool UseWriteAheadLog { get; init; } = true;

    /// <summary>Fail when the file cannot be switched to write-ahead logging.</summary>
    public bool RequireWriteAheadLog { get; init; }

    /// <summary>Create the file's directory when the writer opens.</summary>
    public bool CreateDirectory { get; init; }

    /// <summary>Idle read-only connections kept open for reuse.</summary>
    public int MaxIdleReadConnections { get; init; } = 4;
}

/// <summary>
/// A SQLite database file. SQLite lets one connection write at a time, so this process writes through one dedicated
/// connection (opened on first write), guarded by a semaphore, in BEGIN IMMEDIATE transactions that take the file's write
/// lock up front (other processes wait for it up to the busy timeout). Reads use a small pool of read-only connections.
/// Every connection runs with synchronous=FULL: a commit returns only once it is on disk.
/// </summary>
internal sealed class SqliteDatabase : SqlDatabase
{
    private static readonly Lazy<bool> NativeInit = new(() =>
    {
        SQLitePCL.Batteries_V2.Init();
        return true;
    });

    private readonly SqliteDatabaseOptions _options;
    private readonly string _connectionString;
    private readonly string _writerConnectionString;
    private readonly string _readerConnectionString;
    private readonly string _configureSql;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentBag<SqliteConnection> _readers = new();
    private SqliteConnection? _writer;
    private volatile bool _disposed;

    public SqliteDatabase(SqliteDatabaseOptions options) : base(SqlDialect.Sqlite)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.ConnectionString, nameof(options));
        if (options.BusyTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "BusyTimeout is negative");
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxIdleReadConnections, nameof(options));
        _options = options;
        var builder = new SqliteConnectionStringBuilder(options.ConnectionString);
        // The driver's own command timeout (30 s unless the connection string says otherwise) follows the busy timeout.
        if (builder.DefaultTimeout == 30) builder.DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds);
        _connectionString = builder.ConnectionString;
        DataSource = builder.DataSource;
        // Our own long-lived connections bypass the driver's pool; callers' connections (OpenConnectionAsync) use it.
        _writerConnectionString = new SqliteConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString;
        _readerConnectionString = new SqliteConnectionStringBuilder(_connectionString) { Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ConnectionString;
        _configureSql = $"PRAGMA busy_timeout = {(long)options.BusyTimeout.TotalMilliseconds}; PRAGMA synchronous = FULL;";
    }

    /// <summary>The database file as the connection string names it.</summary>
    public string DataSource { get; }

    public override string Location => DataSource;

    public override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        await OpenAsync(_connectionString, cancellationToken).ConfigureAwait(false);

    public override async Task<T> ReadAsync<T>(Func<DbConnection, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_readers.TryTake(out var connection)) connection = await OpenAsync(_readerConnectionString, cancellationToken).ConfigureAwait(false);
        try
        {
            return await read(connection, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (_disposed || _readers.Count >= _options.MaxIdleReadConnections) connection.Dispose();
            else
            {
                _readers.Add(connection);
                if (_disposed && _readers.TryTake(out var late)) late.Dispose(); // disposed meanwhile: the drain may have missed it
            }
        }
    }

    public override async Task WriteAsync(Func<DbConnection, DbTransaction?, CancellationToken, Task> write, bool transaction, CancellationToken cancellationToken)
    {
        if (!_writeLock.Wait(0)) await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var writer = _writer ??= await OpenWriterAsync(cancellationToken).ConfigureAwait(false);
            if (!transaction)
            {
                await write(writer, null, cancellationToken).ConfigureAwait(false);
                return;
            }
            using var tx = writer.BeginTransaction(deferred: false);
            await write(writer, tx, cancellationToken).ConfigureAwait(false);
            tx.Commit();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        // Readers first: the last connection to close checkpoints the write-ahead log into the main file and deletes it,
        // and only the writer can (read-only connections cannot), so a clean close leaves one self-contained file.
        while (_readers.TryTake(out var connection)) connection.Dispose();
        using (var pooled = new SqliteConnection(_connectionString)) SqliteConnection.ClearPool(pooled);
        await _writeLock.WaitAsync().ConfigureAwait(false); // lets a running write finish
        try
        {
            _writer?.Dispose();
            _writer = null;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task<SqliteConnection> OpenWriterAsync(CancellationToken cancellationToken)
    {
        if (_options.CreateDirectory)
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(DataSource));
            if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        }
        var writer = await OpenAsync(_writerConnectionString, cancellationToken).ConfigureAwait(false);
        try
        {
            if (_options.UseWriteAheadLog)
            {
                var mode = await ScalarAsync(writer, null, "PRAGMA journal_mode = WAL;", cancellationToken).ConfigureAwait(false) as string;
                if (_options.RequireWriteAheadLog && !string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                    throw new InvalidOperationException($"SQLite database {DataSource}: could not switch to WAL journal mode (got '{mode}')");
            }
            return writer;
        }
        catch
        {
            await writer.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<SqliteConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        _ = NativeInit.Value;
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, null, _configureSql, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
