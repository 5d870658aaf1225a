using System.Diagnostics;
using System.Text.Json;
using Cairn.Broker.Groups.Store;
using Cairn.Client;
using Cairn.Testing;
using Cairn.Tests.Admin;

namespace Cairn.Tests.Broker;

/// <summary>
/// Issue 10 case 6 with a real broker process: offsets are committed, the broker is SIGKILLed, and its groups.db-wal is
/// truncated (the loss is reported and the start refused; with offset.store.accept.loss=true it starts flagged in
/// /healthz and the metric) or left alone (every offset is back, no alarm, also after a clean stop and deletions).
/// </summary>
public sealed class OffsetStoreCrashTests
{
    private const string Topic = "orders";
    private const int Partitions = 4;
    private static readonly string[] Groups = ["billing", "audit", "search"];

    private static Testing.BrokerOptions Options() => new() { AdminListen = "none", DataDirPrefix = "cairn-walcheck-" };

    private static KafkaAdminClient Client(BrokerProcess broker) =>
        new(new KafkaClientOptions { BootstrapServers = broker.Bootstrap, RequestTimeout = TimeSpan.FromSeconds(10) });

    /// <summary>Commits <paramref name="rounds"/> rounds of offsets (each group, each partition) one request at a time; returns the last offsets.</summary>
    private static async Task<Dictionary<(string Group, int Partition), long>> CommitRoundsAsync(KafkaAdminClient admin, int rounds)
    {
        var last = new Dictionary<(string, int), long>();
        for (var round = 1; round <= rounds; round++)
        {
            foreach (var group in Groups)
            {
                var offsets = Enumerable.Range(0, Partitions).ToDictionary(p => new TopicPartition(Topic, p), p => new OffsetAndMetadata(round * 100L + p));
                await admin.CommitGroupOffsetsAsync(group, offsets);
                foreach (var (tp, o) in offsets) last[(group, tp.Partition)] = o.Offset;
            }
        }
        return last;
    }

    /// <summary>Waits (bounded) until groups.db.state records at least <paramref name="sequence"/>: the broker refreshes it every 2 s.</summary>
    private static async Task WaitForRecordAsync(BrokerProcess broker, long sequence)
    {
        var path = Path.Combine(broker.DataDir, SqliteGroupStore.DefaultFileName + SqliteWriteRecord.Suffix);
        var clock = Stopwatch.StartNew();
        long seen = -1;
        while (clock.Elapsed < TimeSpan.FromSeconds(60)) // bounds the wait; a loaded machine may refresh late
        {
            try
            {
                seen = SqliteWriteRecord.Read(path)?.Sequence ?? -1;
                if (seen >= sequence) return;
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                // being replaced right now
            }
            await Task.Delay(200);
        }
        Assert.Fail($"{path} records {seen}, expected at least {sequence}\n{broker.RecentOutput(60)}");
    }

    private static async Task AssertOffsetsAsync(KafkaAdminClient admin, Dictionary<(string Group, int Partition), long> expected)
    {
        foreach (var group in expected.Keys.Select(k => k.Group).Distinct())
        {
            var fetched = await admin.FetchCommittedOffsetsAsync(group);
            foreach (var ((g, p), offset) in expected.Where(e => e.Key.Group == group))
                Assert.Equal(offset, fetched.TryGetValue(new TopicPartition(Topic, p), out var o) ? o.Offset : -1);
        }
    }

    [Fact]
    public async Task A_wal_truncated_after_sigkill_refuses_the_start_and_accept_loss_starts_flagged()
    {
        await using var broker = await BrokerProcess.StartAsync(Options());
        int commits;
        await using (var admin = Client(broker))
        {
            await admin.CreateTopicAsync(Topic, Partitions);
            const int rounds = 5;
            await CommitRoundsAsync(admin, rounds);
            commits = rounds * Groups.Length;
        }
        await WaitForRecordAsync(broker, commits);
        broker.Kill();
        var wal = Path.Combine(broker.DataDir, SqliteGroupStore.DefaultFileName + "-wal");
        Assert.True(File.Exists(wal), "SIGKILL should leave the write-ahead log");
        using (var stream = new FileStream(wal, FileMode.Open, FileAccess.Write)) stream.SetLength(0);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => broker.RestartAsync(graceful: false));
        Assert.Contains("acknowledged writes were lost", refused.Message);
        Assert.Contains("cairn serve: offset store", refused.Message);
        Assert.NotEqual(0, broker.ExitCode);

        // Accepting the loss starts the broker, flagged; the offsets are gone (what the operator then sets again).
        await using var accepted = await AdminBroker.StartAsync(o => o with { DataDir = broker.DataDir, OffsetStoreAcceptLoss = true });
        Assert.Equal(-1, await accepted.CommittedAsync("billing", Topic, 0));
        using var health = JsonDocument.Parse(await accepted.Http.GetStringAsync("healthz"));
        Assert.Equal("degraded", health.RootElement.GetProperty("status").GetString());
        Assert.Equal("writes_lost", health.RootElement.GetProperty("offsetStore").GetProperty("problem").GetString());
        var metrics = PrometheusTextParser.Parse(await accepted.Http.GetStringAsync("metrics"));
        Assert.Equal(1, metrics.Single("cairn_offset_store_integrity_problem").Value);
    }

    [Fact]
    public async Task Sigkill_with_an_intact_wal_clean_restarts_and_deletions_keep_offsets_and_raise_nothing()
    {
        await using var broker = await BrokerProcess.StartAsync(Options());
        Dictionary<(string Group, int Partition), long> expected;
        await using (var admin = Client(broker))
        {
            await admin.CreateTopicAsync(Topic, Partitions);
            expected = await CommitRoundsAsync(admin, 4);
            // Deletions lower the number of rows but never the write sequence.
            await admin.DeleteGroupOffsetsAsync("audit", [new TopicPartition(Topic, 0), new TopicPartition(Topic, 1)]);
            await admin.DeleteGroupsAsync(["search"]);
            foreach (var key in expected.Keys.Where(k => k.Group == "search" || (k.Group == "audit" && k.Partition < 2)).ToList()) expected[key] = -1;
        }
        await WaitForRecordAsync(broker, 4 * Groups.Length + 2);

        broker.Kill(); // WAL intact
        await broker.RestartAsync();
        await using (var admin = Client(broker)) await AssertOffsetsAsync(admin, expected);
        Assert.Contains("quick_check passed", broker.RecentOutput());

        await broker.RestartAsync(graceful: true); // SIGTERM, then start
        await using (var admin = Client(broker)) await AssertOffsetsAsync(admin, expected);

        Assert.DoesNotContain(broker.ProblemLines(), l => l.Contains("offset store", StringComparison.OrdinalIgnoreCase) ||
                                                          l.Contains("group store", StringComparison.OrdinalIgnoreCase));
        Assert.True(broker.IsRunning, broker.RecentOutput());
    }
}
