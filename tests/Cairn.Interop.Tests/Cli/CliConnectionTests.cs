using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// How `cairn` connects: -X client properties, --command-config, `cluster info`, and the one-line errors for
/// addresses that refuse or are not Kafka listeners and for values that do not parse.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliConnectionTests(CliBrokerFixture fixture)
{
    private CairnCli Cli => new(fixture.Bootstrap);

    /// <summary>Requires the failure to be exactly one line on stderr (plus the pointer to --help for usage errors).</summary>
    private static void AssertOneLine(ProcessResult r, int exitCode, string expected)
    {
        CairnCli.AssertFails(r, exitCode, expected);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("Run 'cairn ", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 1, $"expected one line of error. {r.Describe()}");
        Assert.DoesNotContain("System.", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public Task Values_that_do_not_parse_are_named_without_dotnet_types() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        AssertOneLine(await Cli.RunAsync("topics", "create", "t", "--partitions", "abc"), 2, "--partitions: 'abc' is not a whole number");
        AssertOneLine(await Cli.RunAsync("topics", "create", "t", "--replication-factor", "70000"), 2, "--replication-factor: '70000' is out of range");
        AssertOneLine(await Cli.RunAsync("topics", "list", "--timeout", "soon"), 2, "--timeout: 'soon' is not a whole number");
        AssertOneLine(await Cli.RunAsync("topics", "alter", "t", "--partitions", "1.5"), 2, "--partitions: '1.5' is not a whole number");
        // serve reads its flags as settings, so a bad one is named by its setting (also in a file or CAIRN_* variable).
        AssertOneLine(await Cli.RunAsync(["serve", "--node-id", "one"], withBootstrap: false), 2, "node.id must be an integer in [0, 2147483647], got 'one'");
        AssertOneLine(await Cli.RunAsync(["serve", "--log-level", "loud"], withBootstrap: false), 2, "--log-level must be trace, debug, information, warning, error, critical or none, got 'loud'");
    });

    [Fact]
    public Task Client_properties_from_X_and_command_config_with_flags_winning() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-props");
        await Cli.CreateTopicAsync(topic, 1);
        int dead = BrokerProcess.FreePort();

        // -X bootstrap.servers alone reaches the broker.
        var r = (await Cli.RunAsync(["topics", "list", "--output", "text", "-X", $"bootstrap.servers={fixture.Bootstrap}", "-X", "client.id=cli-props-test"], withBootstrap: false)).EnsureSuccess();
        Assert.Contains(topic, r.StdoutLines);

        var file = Path.Combine(Path.GetTempPath(), $"cairn-cli-{Guid.NewGuid():N}.properties");
        try
        {
            await File.WriteAllLinesAsync(file, ["# points nowhere", $"bootstrap.servers=127.0.0.1:{dead}", "request.timeout.ms = 4000"]);
            // The file alone: its (dead) address is used, so the call fails to connect.
            AssertOneLine(await Cli.RunAsync(["topics", "list", "--command-config", file], withBootstrap: false), 1, $"127.0.0.1:{dead}");
            // -X overrides the file; an explicit --bootstrap-server overrides both.
            r = (await Cli.RunAsync(["topics", "list", "--output", "text", "--command-config", file, "-X", $"bootstrap.servers={fixture.Bootstrap}"], withBootstrap: false)).EnsureSuccess();
            Assert.Contains(topic, r.StdoutLines);
            r = (await Cli.RunAsync(["topics", "list", "--output", "text", "--command-config", file, "-X", $"metadata.broker.list=127.0.0.1:{dead}"])).EnsureSuccess();
            Assert.Contains(topic, r.StdoutLines);

            await File.WriteAllLinesAsync(file, ["bootstrap.servers=x:1", "no.such.property=1"]);
            AssertOneLine(await Cli.RunAsync("topics", "list", "--command-config", file), 2, "unknown or unsupported client property 'no.such.property'");
        }
        finally
        {
            File.Delete(file);
        }

        AssertOneLine(await Cli.RunAsync("topics", "list", "--command-config", file), 2, $"no such file '{file}'");
        AssertOneLine(await Cli.RunAsync("topics", "list", "-X", "reqest.timeout.ms=5"), 2, "did you mean request.timeout.ms");
        AssertOneLine(await Cli.RunAsync("topics", "list", "-X", "request.timeout.ms=abc"), 2, "request.timeout.ms: 'abc' is not a whole number");
        AssertOneLine(await Cli.RunAsync("topics", "list", "-X", "client.id"), 2, "key=value");
        // A producer property given to a command that does not produce does nothing, and says so.
        r = (await Cli.RunAsync("topics", "list", "-X", "acks=all")).EnsureSuccess();
        Assert.Contains("client property 'acks' is not used by 'cairn topics list'", r.Stderr);
    });

    [Fact]
    public Task A_refused_connection_is_one_line() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        int port = BrokerProcess.FreePort();
        var r = await new CairnCli($"127.0.0.1:{port}").RunAsync("topics", "list", "--timeout", "5");
        AssertOneLine(r, 1, $"cannot connect to 127.0.0.1:{port}: connection refused");
    });

    [Fact]
    public async Task The_admin_http_port_as_bootstrap_is_recognised()
    {
        int adminPort = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions
        {
            Settings = new Dictionary<string, string> { ["admin.listen"] = $"127.0.0.1:{adminPort}" },
        });
        var r = await new CairnCli($"127.0.0.1:{adminPort}").RunAsync("topics", "list", "--timeout", "10");
        AssertOneLine(r, 1, $"127.0.0.1:{adminPort} answered like HTTP; is this the admin port?");
        Assert.True(r.Elapsed < TimeSpan.FromSeconds(10), $"took {r.Elapsed}. {r.Describe()}");
        (await new CairnCli(broker.Bootstrap).RunAsync("cluster", "info")).EnsureSuccess(); // the Kafka port next to it works
    }

    [Fact]
    public Task Cluster_info_shows_brokers_controller_id_and_api_versions() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var info = await Cli.JsonAsync("cluster", "info");
        var kcat = await KcatClient.MetadataAsync(fixture.Bootstrap);
        Assert.Equal(kcat.GetProperty("controllerid").GetInt32(), info.GetProperty("controllerId").GetInt32());
        Assert.False(string.IsNullOrEmpty(info.GetProperty("clusterId").GetString()), info.ToString());
        var broker = Assert.Single(info.GetProperty("brokers").EnumerateArray());
        Assert.Equal(BrokerProcess.NodeId, broker.GetProperty("id").GetInt32());
        Assert.Equal(fixture.Bootstrap, $"{broker.GetProperty("host").GetString()}:{broker.GetProperty("port").GetInt32()}");
        Assert.Equal(kcat.GetProperty("brokers")[0].GetProperty("name").GetString(), fixture.Bootstrap);
        Assert.True(broker.GetProperty("controller").GetBoolean());
        var apis = broker.GetProperty("apis").EnumerateArray().ToDictionary(a => a.GetProperty("name").GetString()!);
        foreach (var name in new[] { "Produce", "Fetch", "Metadata", "ApiVersions", "DeleteRecords", "ListOffsets" })
        {
            Assert.True(apis.TryGetValue(name, out var api), $"{name} missing: {info}");
            Assert.True(api.GetProperty("minVersion").GetInt32() <= api.GetProperty("maxVersion").GetInt32(), api.ToString());
            Assert.InRange(api.GetProperty("usableVersion").GetInt32(), api.GetProperty("minVersion").GetInt32(), api.GetProperty("maxVersion").GetInt32());
        }
        Assert.Equal(3, apis["Metadata"].GetProperty("key").GetInt32());

        var table = (await Cli.OkAsync("cluster", "info")).Stdout;
        Assert.Contains("controller", table);
        Assert.Contains(fixture.Bootstrap, table);
        Assert.Contains("DeleteRecords", table);
        // --output text is kafka-broker-api-versions.sh's format.
        var text = (await Cli.OkAsync("cluster", "info", "--output", "text")).StdoutLines.ToList();
        Assert.Equal($"{fixture.Bootstrap} (id: {BrokerProcess.NodeId} rack: null) -> (", text[0]);
        Assert.Contains(text, l => l.StartsWith("\tProduce(0): 0 to ", StringComparison.Ordinal) && l.Contains("[usable: ", StringComparison.Ordinal));
        Assert.Equal(")", text[^1]);
    });

    [Fact]
    public async Task New_commands_and_common_options_have_help()
    {
        foreach (var h in new[] { new[] { "cluster" }, ["cluster", "info"], ["topics", "trim"], ["topics", "offsets"], ["topics", "describe"], ["produce"], ["groups", "list"] })
        {
            var r = await Cli.RunAsync([.. h, "--help"], withBootstrap: false);
            Assert.True(r.ExitCode == 0 && r.Stdout.Contains("Usage:", StringComparison.Ordinal), $"--help of '{string.Join(' ', h)}'. {r.Describe()}");
            if (h is not ["cluster"])
            {
                Assert.Contains("-X, --property", r.Stdout);
                Assert.Contains("--command-config", r.Stdout);
            }
        }
        Assert.Contains("--pattern", (await Cli.RunAsync(["topics", "delete", "--help"], withBootstrap: false)).Stdout);
        Assert.Contains("--validate-only", (await Cli.RunAsync(["topics", "create", "--help"], withBootstrap: false)).Stdout);
        Assert.Contains("local time", (await Cli.RunAsync(["topics", "offsets", "--help"], withBootstrap: false)).Stdout);
    }
}
