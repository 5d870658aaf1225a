using System.Diagnostics;
using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>`cairn topics ...`, help and exit codes, run as the real executable against a broker.</summary>
[Collection(CliCollection.Name)]
public sealed class CliTopicsTests(CliBrokerFixture fixture)
{
    private CairnCli Cli => new(fixture.Bootstrap);

    private static JsonElement Topic(JsonElement described, string name) =>
        described.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("name").GetString() == name);

    /// <summary>A topic's config entry by name (configs are a list of {name, value, source, sensitive, readOnly}); null when not shown.</summary>
    private static JsonElement? Config(JsonElement topic, string name) =>
        topic.GetProperty("configs").EnumerateArray().Where(c => c.GetProperty("name").GetString() == name).Select(c => (JsonElement?)c).SingleOrDefault();

    [Fact]
    public Task Create_list_describe_alter_delete_with_json_output() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-topic");

        var created = await Cli.JsonAsync("topics", "create", topic, "--partitions", "3", "--config", "retention.ms=3600000", "--config", "cleanup.policy=delete");
        Assert.True(created.GetProperty("created").GetBoolean(), created.ToString());
        Assert.Equal(3, created.GetProperty("partitions").GetInt32());

        var listed = await Cli.JsonAsync("topics", "list");
        var entry = listed.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("name").GetString() == topic);
        Assert.Equal(3, entry.GetProperty("partitionCount").GetInt32());
        Assert.Equal([0, 1, 2], entry.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("partition").GetInt32()));
        Assert.False(entry.GetProperty("internal").GetBoolean());
        Assert.Equal(0, entry.GetProperty("records").GetInt64());
        // The table form names it too; text form is one name per line.
        Assert.Contains(topic, (await Cli.OkAsync("topics", "list")).Stdout);
        Assert.Contains(topic, (await Cli.OkAsync("topics", "list", "--output", "text")).StdoutLines);

        var described = Topic(await Cli.JsonAsync("topics", "describe", topic), topic);
        var partitions = described.GetProperty("partitions").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], partitions.Select(p => p.GetProperty("partition").GetInt32()));
        Assert.All(partitions, p =>
        {
            Assert.Equal(0, p.GetProperty("logStartOffset").GetInt64());
            Assert.Equal(0, p.GetProperty("logEndOffset").GetInt64());
            Assert.Equal(BrokerProcess.NodeId, p.GetProperty("leader").GetInt32());
        });
        var retention = Config(described, "retention.ms") ?? throw new Xunit.Sdk.XunitException($"no retention.ms: {described}");
        Assert.Equal(("3600000", "TopicConfig"), (retention.GetProperty("value").GetString(), retention.GetProperty("source").GetString()));
        // Without --all-configs only the overrides.
        Assert.Equal(["cleanup.policy", "retention.ms"], described.GetProperty("configs").EnumerateArray().Select(c => c.GetProperty("name").GetString()));

        // Records on partition 1 show up in its end offset and its size on disk (DescribeLogDirs).
        await KcatCheck.ProduceAsync(fixture.Bootstrap, topic, 1, ["a", "bb", "ccc", "dddd"]);
        described = Topic(await Cli.JsonAsync("topics", "describe", topic), topic);
        var p1 = described.GetProperty("partitions")[1];
        Assert.Equal(4, p1.GetProperty("logEndOffset").GetInt64());
        Assert.Equal(4, p1.GetProperty("records").GetInt64());
        Assert.True(p1.GetProperty("sizeBytes").ValueKind == JsonValueKind.Number && p1.GetProperty("sizeBytes").GetInt64() > 0, $"partition 1 size: {p1}");
        Assert.Equal(0, described.GetProperty("partitions")[0].GetProperty("logEndOffset").GetInt64());
        var table = await Cli.OkAsync("topics", "describe", topic);
        Assert.Contains("retention.ms", table.Stdout);
        Assert.Contains("LOG END", table.Stdout);

        // alter: set and remove configs, add partitions; kcat sees the new partition count.
        await Cli.OkAsync("topics", "alter", topic, "--config", "retention.ms=7200000", "--delete-config", "cleanup.policy", "--partitions", "5");
        described = Topic(await Cli.JsonAsync("topics", "describe", topic), topic);
        Assert.Equal(5, described.GetProperty("partitions").GetArrayLength());
        Assert.Equal("7200000", Config(described, "retention.ms")?.GetProperty("value").GetString());
        Assert.True(Config(described, "cleanup.policy") is null, $"cleanup.policy override still there: {described}");
        Assert.Equal("DefaultConfig", Config(Topic(await Cli.JsonAsync("topics", "describe", topic, "--all-configs"), topic), "cleanup.policy")?.GetProperty("source").GetString());
        var md = await KcatClient.MetadataAsync(fixture.Bootstrap);
        Assert.Equal(5, md.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("topic").GetString() == topic).GetProperty("partitions").GetArrayLength());

        // Shrinking and creating twice are refused (exit 1, a message); --if-not-exists makes the latter fine.
        CairnCli.AssertFails(await Cli.RunAsync("topics", "alter", topic, "--partitions", "2"), 1, "cannot be removed");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "create", topic, "--partitions", "3"), 1, "already exists");
        await Cli.OkAsync("topics", "create", topic, "--if-not-exists");

        var deleted = await Cli.JsonAsync("topics", "delete", topic);
        Assert.Equal([topic], deleted.GetProperty("deleted").EnumerateArray().Select(d => d.GetString()));
        listed = await Cli.JsonAsync("topics", "list");
        Assert.DoesNotContain(topic, listed.GetProperty("topics").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        CairnCli.AssertFails(await Cli.RunAsync("topics", "describe", topic), 1, "does not exist");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "delete", topic), 1, "does not exist");
        await Cli.OkAsync("topics", "delete", topic, "--if-exists");
    });

    [Fact]
    public Task Help_everywhere_and_exit_codes() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        string[][] helps =
        [
            [], ["topics"], ["topics", "create"], ["produce"], ["consume"], ["groups"], ["groups", "describe"], ["groups", "reset-offsets"],
            ["groups", "delete-offsets"], ["offsets", "export"], ["offsets", "import"],
        ];
        foreach (var h in helps)
        {
            var r = await Cli.RunAsync([.. h, "--help"], withBootstrap: false);
            Assert.True(r.ExitCode == 0 && r.Stdout.Contains("Usage:", StringComparison.Ordinal), $"--help of '{string.Join(' ', h)}'. {r.Describe()}");
        }
        Assert.Contains("--to-datetime", (await Cli.RunAsync(["groups", "reset-offsets", "--help"], withBootstrap: false)).Stdout);

        // Usage errors: exit code 2 and a pointer to --help.
        CairnCli.AssertFails(await Cli.RunAsync("topics", "frobnicate"), 2, "--help");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "create"), 2, "--help");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"), 2, "exactly one");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "reset-offsets", "g", "--topic", "t"), 2, "exactly one");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "reset-offsets", "g", "--to-earliest"), 2, "--all-topics");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"), 2, "ISO-8601");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "reset-offsets", "g", "--topic", "t", "--by-duration", "2 hours"), 2, "ISO-8601 duration");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "list", "--output", "yaml"), 2, "yaml");
        CairnCli.AssertFails(await Cli.RunAsync("consume", "t", "--format", "%q"), 2, "%q");

        // Operational errors: exit code 1 with a clear message; an unreachable broker fails fast.
        CairnCli.AssertFails(await Cli.RunAsync("topics", "describe", Topics.Unique("missing")), 1, "does not exist");
        CairnCli.AssertFails(await Cli.RunAsync(["produce", Topics.Unique("missing")], "x\n"), 1, "does not exist");
        var clock = Stopwatch.StartNew();
        var down = await new CairnCli($"127.0.0.1:{BrokerProcess.FreePort()}").RunAsync(["topics", "list", "--timeout", "5"], timeout: TimeSpan.FromSeconds(60));
        CairnCli.AssertFails(down, 1, "connect");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(45), $"an unreachable broker took {clock.Elapsed.TotalSeconds:F0}s to report. {down.Describe()}");
    });
}
