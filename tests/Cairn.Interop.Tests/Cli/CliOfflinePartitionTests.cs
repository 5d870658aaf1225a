using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// `cairn produce` and `cairn consume` on a topic with one offline partition (a lost segment), real executables: the
/// healthy partitions are written and read, the offline one is named and skipped (as kcat and the Java client do).
/// </summary>
public sealed class CliOfflinePartitionTests
{
    [Fact]
    public async Task Produce_and_consume_use_the_healthy_partitions_of_a_topic_with_an_offline_partition()
    {
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions { AutoCreateTopics = false, DefaultPartitions = 1 });
        await broker.WithBrokerLogAsync(async () =>
        {
            var cli = new CairnCli(broker.Bootstrap);
            // One record per produce call, one batch each: every batch after the first rolls a new segment of partition 1.
            await cli.OkAsync("topics", "create", "half", "--partitions", "3", "--config", "segment.bytes=200");
            for (int batch = 0; batch < 3; batch++)
                await KcatCheck.ProduceAsync(broker.Bootstrap, "half", 1, [$"r{batch}-{new string('x', 64)}"]);
            await broker.StopAsync();
            var logs = Directory.GetFiles(Path.Combine(broker.DataDir, "half-1"), "*.log").Order(StringComparer.Ordinal).ToList();
            Assert.True(logs.Count == 3, string.Join(", ", logs));
            File.Delete(logs[1]); // partition 1 is offline after the restart
            await broker.RestartAsync();

            await cli.OkWithStdinAsync(string.Concat(Enumerable.Range(0, 6).Select(i => $"u{i}\n")), "produce", "half");
            await cli.OkWithStdinAsync("p0\n", "produce", "half", "-p", "0");
            await cli.OkWithStdinAsync("p2\n", "produce", "half", "-p", "2");
            var refused = await cli.RunAsync(["produce", "half", "-p", "1"], "p1\n");
            Assert.True(refused.ExitCode != 0, refused.Describe());
            Assert.Contains("no leader", refused.Stderr, StringComparison.Ordinal);

            var consumed = await cli.RunAsync("consume", "half", "--exit-at-end", "--format", "%p:%v\\n");
            Assert.True(consumed.ExitCode == 0, consumed.Describe());
            var lines = consumed.StdoutLines.ToList();
            Assert.Equal(8, lines.Count);
            Assert.All(lines, l => Assert.False(l.StartsWith("1:", StringComparison.Ordinal), consumed.Describe()));
            Assert.Contains("0:p0", lines);
            Assert.Contains("2:p2", lines);
            Assert.Equal(Enumerable.Range(0, 6).Select(i => $"u{i}"), lines.Select(l => l[2..]).Where(v => v.StartsWith('u')).Order(StringComparer.Ordinal));
            Assert.Contains("half:1 has no leader", consumed.Stderr, StringComparison.Ordinal);
        });
    }
}
