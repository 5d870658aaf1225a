using Cairn.Client;
using Cairn.Offsets;
using Cairn.Tests.Broker;
using Microsoft.Data.Sqlite;

using Cairn.Testing;

namespace Cairn.Tests.Offsets;

/// <summary>
/// examples/ResumablePipeline as a test: a broker in this process, N records in a 3-partition topic, and the pipeline
/// as a child process that is SIGKILLed mid-way, then kills itself inside an open transaction, then runs to the end.
/// Every record must yield exactly one result row, and the stored offsets must be the ends of the partitions.
/// </summary>
public sealed class ResumablePipelineTests : IAsyncLifetime
{
    private const string Topic = "pipeline-input";
    private const int Records = 600;
    private readonly TempDirectory _dir = new();
    private BrokerHarness? _broker;

    public async Task InitializeAsync() => _broker = await BrokerHarness.StartAsync();

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    [Fact]
    public async Task Killed_and_restarted_it_produces_every_result_exactly_once()
    {
        var dll = await ExampleApps.GetDllAsync("ResumablePipeline");
        var client = new KafkaClientOptions { BootstrapServers = $"127.0.0.1:{_broker!.Port}" };
        await using (var admin = new KafkaAdminClient(client)) await admin.CreateTopicAsync(Topic, 3);
        var ends = new Dictionary<int, long>();
        await using (var producer = new KafkaProducer(client))
        {
            var deliveries = await Task.WhenAll(Enumerable.Range(0, Records)
                .Select(i => producer.ProduceAsync(Topic, Message.FromStrings($"key-{i}", $"record-{i}"))));
            foreach (var d in deliveries) ends[d.Partition] = Math.Max(ends.GetValueOrDefault(d.Partition), d.Offset + 1);
        }
        Assert.Equal(3, ends.Count); // the records are spread over every partition

        var db = _dir.File("results.db");
        string[] Args(params string[] extra) =>
            ["--bootstrap", $"127.0.0.1:{_broker.Port}", "--topic", Topic, "--db", db, .. extra];

        // Run 1: SIGKILLed from outside once it has made some progress.
        await using (var run = ChildProcess.StartDll(dll, Args("--batch", "7", "--delay-ms", "2")))
        {
            await run.WaitForStdoutLineAsync(l => l.StartsWith("processed ", StringComparison.Ordinal) && int.Parse(l[10..]) >= Records / 4,
                TimeSpan.FromMinutes(2));
            await run.KillAsync();
        }
        var (afterKill, duplicates) = await CountAsync(db);
        Assert.InRange(afterKill, Records / 4, Records - 1); // killed mid-way
        Assert.Equal(0, duplicates);

        // Run 2: resumes where run 1's last committed batch ended, and dies inside an open transaction.
        await using (var run = ChildProcess.StartDll(dll, Args("--batch", "50", "--crash-mid-transaction-after", "120")))
        {
            await run.WaitForExitAsync(TimeSpan.FromMinutes(2));
            Assert.Contains("crashing mid-transaction", run.StdoutLinesSnapshot());
            Assert.Contains(run.StdoutLinesSnapshot(), l => l.StartsWith("resume ", StringComparison.Ordinal) && !l.EndsWith(" earliest", StringComparison.Ordinal));
            Assert.NotEqual(0, run.ExitCode);
        }
        var (afterCrash, _) = await CountAsync(db);
        Assert.True(afterCrash < Records, "the crashed run should not have finished");

        // Run 3: to the end.
        await using (var run = ChildProcess.StartDll(dll, Args("--batch", "25", "--exit-when-idle-ms", "1500")))
        {
            await run.WaitForExitAsync(TimeSpan.FromMinutes(2));
            Assert.True(run.ExitCode == 0, run.Describe());
            Assert.Contains("idle", run.StdoutLinesSnapshot());
        }

        // Exactly once: every record, no record twice, each result right.
        await using var connection = new SqliteConnection($"Data Source={db}");
        await connection.OpenAsync();
        var rows = new List<(string Source, long Offset, string Key, string Result)>();
        await using (var select = connection.CreateCommand())
        {
            select.CommandText = "SELECT source, source_offset, record_key, result FROM results";
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync()) rows.Add((reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3)));
        }
        Assert.Equal(Records, rows.Count);
        Assert.Equal(Records, rows.Select(r => (r.Source, r.Offset)).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, Records).Select(i => $"RECORD-{i}").Order(StringComparer.Ordinal), rows.Select(r => r.Result).Order(StringComparer.Ordinal));
        Assert.All(rows, r => Assert.Equal(r.Key.Replace("key-", "RECORD-"), r.Result));

        await using var store = await SqliteOffsetStore.OpenAsync($"Data Source={db}", new SqliteOffsetStoreOptions { ConsumerName = "resumable-pipeline" });
        foreach (var (partition, end) in ends)
            Assert.Equal(Offset.Sequence(end), await store.GetAsync(OffsetSource.ForKafka(Topic, partition)));
    }

    private static async Task<(long Rows, long Duplicates)> CountAsync(string db)
    {
        await using var connection = new SqliteConnection($"Data Source={db}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*), COUNT(*) - COUNT(DISTINCT source || '@' || source_offset) FROM results";
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
