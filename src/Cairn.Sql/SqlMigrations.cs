using System.Data.Common;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Cairn.Sql;

/// <summary>One numbered step of a store's schema: statements run together, in the migration transaction.</summary>
internal sealed record SqlMigration(int Version, IReadOnlyList<string> Statements);

/// <summary>
/// A store's schema history: the table recording which versions are applied (one row per version) and the ordered
/// migrations. <paramref name="Applied"/> is the version table's second column, as the store shipped it (the time each
/// version was applied, filled in by the database's clock).
/// </summary>
/// <param name="Name">The store, in messages ("group store", "offsets store").</param>
/// <param name="Schema">The schema (namespace) holding the tables; null for the connection's default.</param>
/// <param name="LockKey">Identifies the store's migrations where the engine locks by key (PostgreSQL advisory lock).</param>
internal sealed record SqlSchemaHistory(string Name, string? Schema, string VersionTable, SqlColumn Applied, long LockKey, IReadOnlyList<SqlMigration> Migrations)
{
    public IReadOnlyList<SqlMigration> Migrations { get; } = CheckOrder(Migrations);

    /// <summary>The newest version this build knows (0 without migrations).</summary>
    public int Latest => Migrations.Count == 0 ? 0 : Migrations[^1].Version;

    private static IReadOnlyList<SqlMigration> CheckOrder(IReadOnlyList<SqlMigration> migrations)
    {
        ArgumentNullException.ThrowIfNull(migrations);
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
                throw new ArgumentException($"migration #{i} has version {migrations[i].Version}; versions must run 1, 2, 3, ... in order", nameof(migrations));
        }
        return migrations;
    }
}

/// <summary>The database's schema is newer than the newest version this build knows: it was written by a newer build.</summary>
internal sealed class SqlSchemaTooNewException(long found, int known, string message) : InvalidOperationException(message)
{
    public long Found { get; } = found;

    public int Known { get; } = known;
}

/// <summary>
/// Brings a database to a store's newest schema: in one write transaction that first takes the engine's migration lock,
/// creates the version table if missing, reads the version, and applies each newer migration in order, recording it.
/// Concurrent migrators (threads or processes) take turns, so each version is applied once; a database already at the
/// newest version gets nothing; a failure rolls everything back.
/// </summary>
internal static class SqlMigrationRunner
{
    /// <summary>Migrates; returns the version the database was at before.</summary>
    /// <exception cref="SqlSchemaTooNewException">The database is at a version newer than <see cref="SqlSchemaHistory.Latest"/>.</exception>
    public static async Task<int> MigrateAsync(SqlDatabase database, SqlSchemaHistory history, ILogger? logger, CancellationToken cancellationToken)
    {
        var dialect = database.Dialect;
        var before = 0;
        await database.WriteAsync(async (connection, transaction, ct) =>
        {
            foreach (var statement in dialect.MigrationPreamble(history.Schema, history.LockKey))
                await SqlDatabase.ExecuteAsync(connection, transaction, statement, ct).ConfigureAwait(false);
            var versionTable = new SqlTable(history.VersionTable, [new SqlColumn("version", SqlType.Int32), history.Applied], ["version"]);
            await SqlDatabase.ExecuteAsync(connection, transaction, dialect.CreateTableSql(versionTable, history.Schema, ifNotExists: true), ct)
                .ConfigureAwait(false);
            before = await SelectVersionAsync(connection, transaction, dialect, history, ct).ConfigureAwait(false);
            if (before > history.Latest)
            {
                throw new SqlSchemaTooNewException(before, history.Latest,
                    $"The {dialect.Name} {history.Name} at {database.Location} has schema version {before}, newer than the newest this " +
                    $"build knows ({history.Latest}); it was written by a newer version. Upgrade, or use another database.");
            }
            var record = $"INSERT INTO {dialect.QualifiedName(history.Schema, history.VersionTable)} (version, {history.Applied.Name}) " +
                         $"VALUES ({dialect.Parameter("version")}, {dialect.NowSql(history.Applied.Type)})";
            foreach (var migration in history.Migrations)
            {
                if (migration.Version <= before) continue;
                foreach (var statement in migration.Statements)
                    await SqlDatabase.ExecuteAsync(connection, transaction, statement, ct).ConfigureAwait(false);
                await SqlDatabase.ExecuteAsync(connection, transaction, record, ct, ("version", migration.Version)).ConfigureAwait(false);
                logger?.LogInformation("{Dialect} {Store} {Location}: applied schema migration {Version}",
                    dialect.Name, history.Name, database.Location, migration.Version);
            }
        }, transaction: true, cancellationToken).ConfigureAwait(false);
        return before;
    }

    /// <summary>
    /// The version the database is at, 0 when the version table does not exist; read on the caller's connection (and inside
    /// its transaction, if any) without creating or locking anything.
    /// </summary>
    public static async Task<int> ReadVersionAsync(DbConnection connection, DbTransaction? transaction, SqlDialect dialect, SqlSchemaHistory history,
        CancellationToken cancellationToken)
    {
        var exists = await SqlDatabase.ScalarAsync(connection, transaction, dialect.TableExistsSql(history.Schema, history.VersionTable), cancellationToken)
            .ConfigureAwait(false);
        if (exists is null or false || (exists is not bool && Convert.ToInt64(exists, CultureInfo.InvariantCulture) == 0)) return 0;
        return await SelectVersionAsync(connection, transaction, dialect, history, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<int> SelectVersionAsync(DbConnection connection, DbTransaction? transaction, SqlDialect dialect, SqlSchemaHistory history,
        CancellationToken cancellationToken)
    {
        var value = await SqlDatabase.ScalarAsync(connection, transaction,
            $"SELECT COALESCE(MAX(version), 0) FROM {dialect.QualifiedName(history.Schema, history.VersionTable)}", cancellationToken).ConfigureAwait(false);
        return Convert.ToInt32(value, CultureInfo.InvariantCulture);
    }
}
