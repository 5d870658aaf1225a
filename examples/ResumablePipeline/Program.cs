// ResumablePipeline: reads every partition of a topic, turns each record into a result row in a SQLite database,
// and commits, in the same SQLite transaction as the rows, the position after the last record of the batch
// (Cairn.Offsets' SqliteOffsetStore.CommitAsync(source, offset, transaction)). Rows and offsets are durable together
// or not at all, so however the process dies, a restart resumes exactly after the last results it kept: every
// record yields exactly one result.
//
//   dotnet ResumablePipeline.dll --bootstrap 127.0.0.1:9092 --topic orders --db results.db
//       [--batch 10]                         records per transaction
//       [--delay-ms 0]                       pause after each record (to make it slow enough to kill mid-way)
//       [--exit-when-idle-ms 0]              exit once no record arrived for this long (0: run until killed)
//       [--crash-mid-transaction-after 0]    SIGKILL itself after this many rows, inside an open transaction
//
// Prints "resume <source> <offset>" per partition, "started", "processed <n>" after each committed batch and
// "idle" before an idle exit. Exit codes: 0 after an idle exit, 2 for a usage error (one line naming it, then the
// usage line), 1 when the broker or the database fails (one line).
using System.Diagnostics;
using System.Globalization;
using Cairn.Client;
using Cairn.Offsets;
using Microsoft.Data.Sqlite;

Settings settings;
try
{
    settings = Settings.Parse(args);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"ResumablePipeline: {e.Message}");
    Console.Error.WriteLine(Settings.Usage);
    return 2;
}
try
{
    return await RunAsync(settings);
}
catch (ArgumentException e)
{
    // the client's own checks of the settings, such as a --bootstrap that is not HOST:PORT
    Console.Error.WriteLine($"ResumablePipeline: {e.Message}");
    return 2;
}
catch (Exception e) when (e is KafkaException or SqliteException or IOException)
{
    Console.Error.WriteLine($"ResumablePipeline: {e.Message}");
    return 1;
}

static async Task<int> RunAsync(Settings settings)
{
    var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };

    // The offsets live in the same database as the results.
    await using var store = await SqliteOffsetStore.OpenAsync(
        new SqliteConnectionStringBuilder { DataSource = settings.Database }.ConnectionString,
        new SqliteOffsetStoreOptions { ConsumerName = "resumable-pipeline" });
    await using (var connection = await store.OpenConnectionAsync())
    await using (var create = connection.CreateCommand())
    {
        // Deliberately no unique key on (source, source_offset): a duplicate result would show, not be hidden.
        create.CommandText = """
            CREATE TABLE IF NOT EXISTS results (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL,
                source_offset INTEGER NOT NULL,
                record_key TEXT,
                result TEXT NOT NULL)
            """;
        await create.ExecuteNonQueryAsync();
    }

    var client = new KafkaClientOptions { BootstrapServers = settings.Bootstrap, ClientId = "resumable-pipeline" };
    int partitionCount;
    await using (var admin = new KafkaAdminClient(client))
        partitionCount = (await admin.DescribeTopicsAsync([settings.Topic], includeOffsets: false)).Single().Partitions.Count;

    await using var consumer = new KafkaConsumer(client, new ConsumerOptions
    {
        AutoOffsetReset = AutoOffsetReset.None, // every partition gets an explicit position below
        MaxWait = TimeSpan.FromMilliseconds(100),
    });
    var partitions = Enumerable.Range(0, partitionCount).Select(p => new TopicPartition(settings.Topic, p)).ToList();
    consumer.Assign(partitions);
    foreach (var tp in partitions)
    {
        var source = OffsetSource.ForKafka(tp.Topic, tp.Partition);
        var start = await store.GetAsync(source) ?? Offset.Earliest; // nothing kept yet: from the beginning
        await consumer.SeekAsync(tp, start);
        output.WriteLine($"resume {source} {start}");
    }
    output.WriteLine("started");

    long processed = 0, rowsThisRun = 0;
    var batch = new List<ConsumeResult>();
    var idle = Stopwatch.StartNew();
    while (true)
    {
        var record = await consumer.ConsumeAsync(TimeSpan.FromMilliseconds(50));
        if (record is { IsPartitionEof: false })
        {
            batch.Add(record);
            idle.Restart();
        }
        if (batch.Count >= settings.Batch || (record is null && batch.Count > 0))
        {
            await WriteBatchAsync(batch);
            processed += batch.Count;
            batch.Clear();
            output.WriteLine($"processed {processed}");
        }
        if (record is null && settings.ExitWhenIdle > TimeSpan.Zero && idle.Elapsed >= settings.ExitWhenIdle)
        {
            output.WriteLine("idle");
            return 0;
        }
    }

    async Task WriteBatchAsync(List<ConsumeResult> records)
    {
        await using var connection = await store.OpenConnectionAsync();
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
        foreach (var r in records)
        {
            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO results (source, source_offset, record_key, result) VALUES ($source, $offset, $key, $result)";
            insert.Parameters.AddWithValue("$source", OffsetSource.ForKafka(r.Topic, r.Partition));
            insert.Parameters.AddWithValue("$offset", r.Offset);
            insert.Parameters.AddWithValue("$key", (object?)r.KeyAsString() ?? DBNull.Value);
            insert.Parameters.AddWithValue("$result", Transform(r.ValueAsString()));
            await insert.ExecuteNonQueryAsync();

            rowsThisRun++;
            if (settings.CrashAfter > 0 && rowsThisRun >= settings.CrashAfter)
            {
                output.WriteLine("crashing mid-transaction");
                Process.GetCurrentProcess().Kill(); // SIGKILL: no rollback, no dispose, nothing
            }
            if (settings.Delay > TimeSpan.Zero) await Task.Delay(settings.Delay);
        }
        // The position after each partition's last record, committed with the rows.
        foreach (var last in records.GroupBy(r => r.TopicPartition).Select(g => g.MaxBy(r => r.Offset)!))
            await store.CommitAsync(OffsetSource.ForKafka(last.Topic, last.Partition), Offset.Sequence(last.Offset).Next(), transaction);
        await transaction.CommitAsync();
    }

    static string Transform(string? value) => (value ?? "").ToUpperInvariant();
}

sealed class UsageException(string message) : Exception(message);

sealed record Settings(string Bootstrap, string Topic, string Database, int Batch, TimeSpan Delay, TimeSpan ExitWhenIdle, long CrashAfter)
{
    public const string Usage =
        "usage: ResumablePipeline --bootstrap HOST:PORT --topic TOPIC --db FILE [--batch N] [--delay-ms N] [--exit-when-idle-ms N] [--crash-mid-transaction-after N]";

    private static readonly string[] Names = ["bootstrap", "topic", "db", "batch", "delay-ms", "exit-when-idle-ms", "crash-mid-transaction-after"];

    /// <summary>Reads `--name value` pairs; throws <see cref="UsageException"/> naming the first problem.</summary>
    public static Settings Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || !Names.Contains(args[i][2..]))
                throw new UsageException($"unknown argument '{args[i]}'");
            if (i + 1 >= args.Length) throw new UsageException($"{args[i]} needs a value");
            values[args[i][2..]] = args[i + 1];
        }
        string Required(string name) => values.TryGetValue(name, out var v) ? v : throw new UsageException($"--{name} is required");
        long Number(string name, long fallback, long max) =>
            !values.TryGetValue(name, out var v) ? fallback
            : long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= max ? n
            : throw new UsageException($"--{name} must be a whole number from 0 to {max}, got '{v}'");
        if (Number("batch", 10, int.MaxValue) == 0) throw new UsageException("--batch must be at least 1");
        return new Settings(
            Required("bootstrap"),
            Required("topic"),
            Required("db"),
            (int)Number("batch", 10, int.MaxValue),
            TimeSpan.FromMilliseconds(Number("delay-ms", 0, int.MaxValue)),
            TimeSpan.FromMilliseconds(Number("exit-when-idle-ms", 0, int.MaxValue)),
            Number("crash-mid-transaction-after", 0, long.MaxValue));
    }
}
