using System.Data.Common;

namespace Cairn.Sql;

/// <summary>
/// A store's way into its database: connections configured for it, and the engine's rules for reading and writing
/// (SQLite: one writer connection at a time, read-only readers; PostgreSQL: a connection pool).
/// </summary>
internal abstract class SqlDatabase(SqlDialect dialect) : IAsyncDisposable
{
    public SqlDialect Dialect { get; } = dialect;

    /// <summary>Where the database is, for messages: a file path, or host:port/database.</summary>
    public abstract string Location { get; }

    /// <summary>A new open connection, configured like the store's own, for the caller's work; the caller disposes it.</summary>
    public abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="read"/> on a connection that sees every committed write.</summary>
    public abstract Task<T> ReadAsync<T>(Func<DbConnection, CancellationToken, Task<T>> read, CancellationToken cancellationToken);

    /// <summary>
    /// Runs <paramref name="write"/> as this process's only writer on the database (SQLite) or on a pooled connection
    /// (PostgreSQL). With <paramref name="transaction"/> it gets a write transaction, committed when it returns and
    /// rolled back when it throws (SQLite: BEGIN IMMEDIATE, so the write lock is held from the start); without one each
    /// statement commits by itself.
    /// </summary>
    public abstract Task WriteAsync(Func<DbConnection, DbTransaction?, CancellationToken, Task> write, bool transaction, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    /// <summary>A command on <paramref name="connection"/> with named parameters (name, value; null is SQL NULL).</summary>
    public static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters) AddParameter(command, name, value);
        return command;
    }

    public static DbParameter AddParameter(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return parameter;
    }

    public static async Task<int> ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken,
        params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public static async Task<object?> ScalarAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken,
        params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is DBNull ? null : value;
    }

    /// <summary>Reads every row of <paramref name="command"/> with <paramref name="readRow"/>.</summary>
    public static async Task<List<T>> ReadRowsAsync<T>(DbCommand command, Func<DbDataReader, T> readRow, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) rows.Add(readRow(reader));
        return rows;
    }
}

/// <summary>Column reads that map SQL NULL to .NET null.</summary>
internal static class SqlRowExtensions
{
    public static string? GetStringOrNull(this DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    public static long? GetInt64OrNull(this DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);
}
