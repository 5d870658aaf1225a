using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// The operator's path through a lost segment, with the real executables: the broker starts with the partition offline,
/// `cairn topics describe` shows it, `cairn storage` refuses while the broker runs, finds the gap once it is stopped,
/// repairs it, and the restarted broker serves the partition again (kcat reads the records before the gap).
/// </summary>
public sealed class CliStorageTests
{
    [Fact]
    public async Task A_lost_segment_is_shown_offline_checked_repaired_and_served_again()
    {
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions { AutoCreateTopics = false, DefaultPartitions = 1 });
        await broker.WithBrokerLogAsync(async () =>
        {
            var cli = new CairnCli(broker.Bootstrap);
            // One record per produce call, one batch of ~140 bytes each: every batch after the first rolls a new segment.
            await cli.OkAsync("topics", "create", "lost", "--partitions", "2", "--config", "segment.bytes=200");
            for (int batch = 0; batch < 3; batch++)
                await KcatCheck.ProduceAsync(broker.Bootstrap, "lost", 0, [$"r{batch}-{new string('x', 64)}"]);
            await KcatCheck.ProduceAsync(broker.Bootstrap, "lost", 1, ["other"]);
            var before = await KcatCheck.ReadPartitionAsync(broker.Bootstrap, "lost", 0, 3);
            Assert.Equal(3, before.Count);

            await broker.StopAsync();
            var partitionDir = Path.Combine(broker.DataDir, "lost-0");
            var logs = Directory.GetFiles(partitionDir, "*.log").Order(StringComparer.Ordinal).ToList();
            Assert.True(logs.Count == 3, string.Join(", ", logs)); // bases 0, 1, 2
            File.Delete(logs[1]);
            await broker.RestartAsync();

            var described = await cli.JsonAsync("topics", "describe", "lost");
            var partitions = described.GetProperty("topics")[0].GetProperty("partitions");
            Assert.True(partitions[0].GetProperty("offline").GetBoolean(), described.ToString());
            Assert.Contains("KAFKA_STORAGE_ERROR", partitions[0].GetProperty("offlineReason").GetString(), StringComparison.Ordinal);
            Assert.Equal(-1, partitions[0].GetProperty("leader").GetInt32());
            Assert.False(partitions[1].GetProperty("offline").GetBoolean());
            Assert.Equal(1, partitions[1].GetProperty("logEndOffset").GetInt64());
            Assert.Contains("Partition 0 is offline", (await cli.OkAsync("topics", "describe", "lost")).Stdout, StringComparison.Ordinal);

            CairnCli.AssertFails(await cli.RunAsync(["storage", "check", "--data-dir", broker.DataDir], withBootstrap: false), 1, "stop the broker first");

            await broker.StopAsync();
            var check = await cli.RunAsync(["storage", "check", "--data-dir", broker.DataDir, "--json"], withBootstrap: false);
            Assert.True(check.ExitCode == 1, check.Describe());
            using (var doc = JsonDocument.Parse(check.Stdout))
            {
                var p0 = doc.RootElement.GetProperty("report").GetProperty("partitions").EnumerateArray().Single(p => p.GetProperty("partition").GetInt32() == 0);
                Assert.True(p0.GetProperty("offline").GetBoolean(), check.Stdout);
                Assert.Equal(1, p0.GetProperty("consistentEndOffset").GetInt64());
            }

            var repair = await cli.RunAsync(["storage", "repair", "--truncate-at-gap", "--data-dir", broker.DataDir], withBootstrap: false);
            Assert.True(repair.ExitCode == 0, repair.Describe());
            Assert.Contains("lost-0: log end offset 3 -> 1", repair.Stdout, StringComparison.Ordinal);
            Assert.Contains(logs[2] + " -> ", repair.Stdout, StringComparison.Ordinal);
            var healthy = await cli.RunAsync(["storage", "check", "--data-dir", broker.DataDir], withBootstrap: false);
            Assert.True(healthy.ExitCode == 0, healthy.Describe());

            await broker.RestartAsync();
            var after = await KcatCheck.ReadPartitionAsync(broker.Bootstrap, "lost", 0, 1);
            Assert.Equal(before.Take(1).Select(r => (r.Offset, Encoding.UTF8.GetString(r.Value!))), after.Select(r => (r.Offset, Encoding.UTF8.GetString(r.Value!))));
            described = await cli.JsonAsync("topics", "describe", "lost");
            var p = described.GetProperty("topics")[0].GetProperty("partitions")[0];
            Assert.False(p.GetProperty("offline").GetBoolean(), described.ToString());
            Assert.Equal(1, p.GetProperty("logEndOffset").GetInt64());
        });
    }
}
