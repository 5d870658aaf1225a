using System.Data.Common;
using Npgsql;

namespace Cairn.Sql;

/// <summary>
/// A PostgreSQL database through an <see cref="NpgsqlDataSource"/> (a connection pool): every read and write takes a
/// pooled connection, so they run concurrently and PostgreSQL's own locking orders them.
/// </summary>
internal sealed class PostgresDatabase : SqlDatabase
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private int _disposed;

    /// <param name="ownsDataSource">Dispose <paramref name="dataSource"/> with this object.</param>
    public PostgresDatabase(NpgsqlDataSource dataSource, bool ownsDataSource) : base(SqlDialect.Postgres)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        Host = builder.Host;
        Port = builder.Port;
        Database = builder.Database;
    }

    /// <summary>A database with its own pool, built from an Npgsql connection string.</summary>
    public static PostgresDatabase Create(string connectionString)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return new PostgresDatabase(NpgsqlDataSource.Create(connectionString), ownsDataSource: true);
    }

    public NpgsqlDataSource DataSource => _dataSource;

    public string? Host { get; }

    public int Port { get; }

    public string? Database { get; }

    public override string Location => $"{Host}:{Port}/{Database}";

    public override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    public override async Task<T> ReadAsync<T>(Func<DbConnection, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await read(connection, cancellationToken).ConfigureAwait(false);
    }

    public override async Task WriteAsync(Func<DbConnection, DbTransaction?, CancellationToken, Task> write, bool transaction, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        if (!transaction)
        {
            await write(connection, null, cancellationToken).ConfigureAwait(false);
            return;
        }
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await write(connection, tx, cancellationToken).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
