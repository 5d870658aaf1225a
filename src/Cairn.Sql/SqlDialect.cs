using System.Text;
using Npgsql;

namespace Cairn.Sql;

/// <summary>Column types as the stores think of them; each dialect names them in its own DDL.</summary>
internal enum SqlType
{
    Text,
    Int32,
    Int64,
    Guid,
    Bytes,
    /// <summary>A point in time: ISO-8601 text in SQLite, timestamptz in PostgreSQL.</summary>
    Timestamp,
}

/// <param name="DefaultNow">The column defaults to the current time (in the column's own representation).</param>
internal sealed record SqlColumn(string Name, SqlType Type, bool Nullable = false, bool DefaultNow = false);

/// <param name="Clustered">Rows are stored in primary-key order (SQLite: WITHOUT ROWID; PostgreSQL has no such option).</param>
internal sealed record SqlTable(string Name, IReadOnlyList<SqlColumn> Columns, IReadOnlyList<string> PrimaryKey, bool Clustered = false);

/// <summary>
/// What differs between the engines: DDL type names, the expression for "now", text ordering, how a table's existence is
/// asked, how concurrent migrators are kept apart and which failures are worth retrying. Both engines share the
/// <c>INSERT ... ON CONFLICT DO UPDATE</c> upsert and <c>@name</c> parameters (Npgsql rewrites them), so those live here once.
/// </summary>
internal abstract class SqlDialect
{
    public static readonly SqlDialect Sqlite = new SqliteDialect();
    public static readonly SqlDialect Postgres = new PostgresDialect();

    /// <summary>The engine's name in messages ("SQLite", "PostgreSQL").</summary>
    public abstract string Name { get; }

    /// <summary>The placeholder of the named parameter <paramref name="name"/>.</summary>
    public string Parameter(string name) => "@" + name;

    public abstract string TypeName(SqlType type);

    /// <summary>An expression for the current time, in the representation of a column of <paramref name="type"/>
    /// (Int64: Unix milliseconds; Text and Timestamp: the dialect's timestamp).</summary>
    public abstract string NowSql(SqlType type);

    /// <summary>An ORDER BY term that sorts text by its bytes, as .NET's ordinal comparison does.</summary>
    public abstract string OrdinalOrder(string column);

    /// <summary>The name of <paramref name="table"/> in <paramref name="schema"/> (null: the connection's default).</summary>
    public abstract string QualifiedName(string? schema, string table);

    /// <summary>A scalar query that is true (or non-zero) when the table exists.</summary>
    public abstract string TableExistsSql(string? schema, string table);

    /// <summary>Statements run first in a migration transaction: the lock that makes concurrent migrators take turns, then
    /// the schema (namespace) if the tables live in one.</summary>
    public abstract IEnumerable<string> MigrationPreamble(string? schema, long lockKey);

    /// <summary>A failure after which the same transaction may succeed when run again (deadlock, serialization failure).</summary>
    public abstract bool IsTransient(Exception exception);

    public string CreateTableSql(SqlTable table, string? schema = null, bool ifNotExists = false)
    {
        var sql = new StringBuilder("CREATE TABLE ");
        if (ifNotExists) sql.Append("IF NOT EXISTS ");
        sql.Append(QualifiedName(schema, table.Name)).Append(" (");
        foreach (var column in table.Columns) sql.Append(ColumnSql(column)).Append(", ");
        sql.Append("PRIMARY KEY (").AppendJoin(", ", table.PrimaryKey).Append("))");
        if (table.Clustered) sql.Append(ClusteredSuffix);
        return sql.ToString();
    }

    public string AddColumnSql(string? schema, string table, SqlColumn column) =>
        $"ALTER TABLE {QualifiedName(schema, table)} ADD COLUMN {ColumnSql(column)}";

    public string CreateIndexSql(string? schema, string index, string table, params string[] columns) =>
        $"CREATE INDEX {index} ON {QualifiedName(schema, table)} ({string.Join(", ", columns)})";

    /// <summary>
    /// Inserts a row or, when its key exists, overwrites the other columns. <paramref name="values"/> pairs each column with
    /// its SQL value (a parameter placeholder or an expression); <paramref name="key"/> names the conflict columns.
    /// </summary>
    public string UpsertSql(string qualifiedTable, IReadOnlyList<(string Column, string Value)> values, IReadOnlyList<string> key)
    {
        var sql = new StringBuilder("INSERT INTO ").Append(qualifiedTable).Append(" (")
            .AppendJoin(", ", values.Select(v => v.Column)).Append(") VALUES (")
            .AppendJoin(", ", values.Select(v => v.Value)).Append(") ON CONFLICT (")
            .AppendJoin(", ", key).Append(") DO UPDATE SET ")
            .AppendJoin(", ", values.Where(v => !key.Contains(v.Column)).Select(v => $"{v.Column} = excluded.{v.Column}"));
        return sql.ToString();
    }

    private protected virtual string ClusteredSuffix => "";

    private string ColumnSql(SqlColumn column)
    {
        var sql = $"{column.Name} {TypeName(column.Type)}";
        if (!column.Nullable) sql += " NOT NULL";
        if (column.DefaultNow) sql += $" DEFAULT ({NowSql(column.Type)})"; // SQLite takes an expression default only in parentheses
        return sql;
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''") + "'";

    private sealed class SqliteDialect : SqlDialect
    {
        public override string Name => "SQLite";

        public override string TypeName(SqlType type) => type switch
        {
            SqlType.Text or SqlType.Timestamp => "TEXT",
            SqlType.Int32 or SqlType.Int64 => "INTEGER",
            SqlType.Guid or SqlType.Bytes => "BLOB",
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };

        // julianday has millisecond precision; 2440587.5 is the Julian day of the Unix epoch.
        public override string NowSql(SqlType type) => type switch
        {
            SqlType.Int64 => "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)",
            SqlType.Text or SqlType.Timestamp => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no current-time value of this type"),
        };

        // SQLite's default BINARY collation already compares bytes.
        public override string OrdinalOrder(string column) => column;

        public override string QualifiedName(string? schema, string table) =>
            schema is null ? table : throw new NotSupportedException("SQLite tables live in the database file, not in a schema");

        public override string TableExistsSql(string? schema, string table) =>
            $"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = {Literal(QualifiedName(schema, table))}";

        // The migration transaction is BEGIN IMMEDIATE (SqliteDatabase's write transactions): it already holds the
        // database's write lock, so concurrent migrators, in this process or another, take turns.
        public override IEnumerable<string> MigrationPreamble(string? schema, long lockKey) =>
            schema is null ? [] : throw new NotSupportedException("SQLite tables live in the database file, not in a schema");

        // SQLITE_BUSY is already waited out by the busy timeout; nothing else gets better on a second try.
        public override bool IsTransient(Exception exception) => false;

        private protected override string ClusteredSuffix => " WITHOUT ROWID";
    }

    private sealed class PostgresDialect : SqlDialect
    {
        public override string Name => "PostgreSQL";

        public override string TypeName(SqlType type) => type switch
        {
            SqlType.Text => "text",
            SqlType.Int32 => "integer",
            SqlType.Int64 => "bigint",
            SqlType.Guid => "uuid",
            SqlType.Bytes => "bytea",
            SqlType.Timestamp => "timestamptz",
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };

        public override string NowSql(SqlType type) => type switch
        {
            SqlType.Int64 => "CAST(round(extract(epoch FROM now()) * 1000) AS bigint)",
            SqlType.Timestamp => "now()",
            SqlType.Text => """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no current-time value of this type"),
        };

        // The database's collation may be linguistic; "C" compares bytes.
        public override string OrdinalOrder(string column) => column + " COLLATE \"C\"";

        public override string QualifiedName(string? schema, string table) => schema is null ? table : Quote(schema) + "." + table;

        public override string TableExistsSql(string? schema, string table) =>
            $"SELECT to_regclass({Literal(QualifiedName(schema, table))}) IS NOT NULL";

        // A transaction-scoped advisory lock: released by the commit or rollback, even if the process dies.
        public override IEnumerable<string> MigrationPreamble(string? schema, long lockKey) =>
            schema is null
                ? [$"SELECT pg_advisory_xact_lock({lockKey})"]
                : [$"SELECT pg_advisory_xact_lock({lockKey})", $"CREATE SCHEMA IF NOT EXISTS {Quote(schema)}"];

        public override bool IsTransient(Exception exception) =>
            exception is PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure };

        private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"") + "\"";
    }
}
