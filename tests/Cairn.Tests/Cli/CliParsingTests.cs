using System.CommandLine;
using Cairn.Cli;
using Cairn.Cli.Tool;
using Cairn.Client;

namespace Cairn.Tests.Cli;

/// <summary>The CLI's pure parsing: parse-error wording, client properties, times for ListOffsets, TOPIC:PARTITION.</summary>
public sealed class CliParsingTests
{
    private enum Codec { None, Gzip, Zstd }

    /// <summary>The message the CLI shows for a value given to an option of type <typeparamref name="T"/>.</summary>
    private static string ErrorFor<T>(string value)
    {
        var option = new Option<T>("--value");
        var root = new RootCommand { option };
        var parse = root.Parse([$"--value={value}"]); // the = form: a bool option takes no separate value
        var error = Assert.Single(parse.Errors);
        var message = ParseErrors.Describe(error);
        Assert.DoesNotContain("System.", message);
        Assert.DoesNotContain("expected type", message);
        return message;
    }

    [Fact]
    public void Conversion_errors_say_what_was_expected_without_type_names()
    {
        Assert.Equal("--value: 'abc' is not a whole number", ErrorFor<int>("abc"));
        Assert.Equal("--value: 'abc' is not a whole number", ErrorFor<int?>("abc"));
        Assert.Equal("--value: '99999999999' is out of range (-2147483648 to 2147483647)", ErrorFor<int>("99999999999"));
        Assert.Equal("--value: '1.5' is not a whole number", ErrorFor<long>("1.5"));
        Assert.Equal("--value: 'x' is not a whole number", ErrorFor<short>("x"));
        Assert.Equal("--value: 'fast' is not a number", ErrorFor<double>("fast"));
        Assert.StartsWith("--value: '2 hours' is not a duration", ErrorFor<TimeSpan>("2 hours"));
        // (System.CommandLine reads a bool option's odd value as a stray argument; the wording is still covered.)
        Assert.Equal("--flag: 'maybe' is not true or false",
            ParseErrors.Rewrite("Cannot parse argument 'maybe' for option '--flag' as expected type 'System.Boolean'.", null, null));
        Assert.Equal("--value: 'lz5' is not one of none, gzip, zstd", ErrorFor<Codec>("lz5"));
        Assert.Equal("--value: 'x' is not a whole number", ErrorFor<int[]>("x"));
    }

    [Fact]
    public void Arguments_are_named_and_other_messages_pass_through()
    {
        var argument = new Argument<int>("count");
        var root = new RootCommand { argument };
        var error = Assert.Single(root.Parse(["many"]).Errors);
        Assert.Equal("<count>: 'many' is not a whole number", ParseErrors.Describe(error));
        // Without the symbol, the message's own option name and type are used.
        Assert.Equal("--partitions: 'abc' is not a whole number",
            ParseErrors.Rewrite("Cannot parse argument 'abc' for option '--partitions' as expected type 'System.Nullable`1[System.Int32]'.", null, null));
        Assert.Equal("Unrecognized command or argument 'frob'.", ParseErrors.Rewrite("Unrecognized command or argument 'frob'.", null, null));
    }

    [Fact]
    public void Client_properties_parse_merge_and_refuse_unknown_names()
    {
        var items = KafkaProperties.ParseItems(["client.id=ops", "linger.ms=5", "sasl.jaas.config=a=b"]);
        Assert.Equal(new KeyValuePair<string, string>("sasl.jaas.config", "a=b"), items[2]); // the value keeps later '='
        Assert.Throws<UsageException>(() => KafkaProperties.ParseItems(["client.id"]));
        Assert.Throws<UsageException>(() => KafkaProperties.ParseItems(["=x"]));

        var merged = KafkaProperties.Merge([new("client.id", "from-file"), new("retries", "7")], [new("client.id", "from-flag")]);
        Assert.Equal("from-flag", merged["client.id"]); // -X wins over --command-config
        Assert.Equal("7", merged["retries"]);

        var e = Assert.Throws<UsageException>(() => KafkaProperties.Merge([], [new("linger.m", "5")]));
        Assert.Contains("'linger.m'", e.Message);
        Assert.Contains("did you mean linger.ms", e.Message);
        Assert.Contains("--command-config", Assert.Throws<UsageException>(() => KafkaProperties.Merge([new("no.such.thing", "1")], [])).Message);
    }

    [Fact]
    public void Connection_properties_map_to_client_options()
    {
        var used = new HashSet<string>();
        var options = KafkaProperties.Apply(new KafkaClientOptions(), new Dictionary<string, string>
        {
            ["metadata.broker.list"] = "127.0.0.1:1", ["client.id"] = "ops", ["socket.timeout.ms"] = "2500",
            ["metadata.max.age.ms"] = "1000", ["retries"] = "0", ["retry.backoff.ms"] = "20", ["acks"] = "all",
        }, used);
        Assert.Equal("127.0.0.1:1", options.BootstrapServers);
        Assert.Equal("ops", options.ClientId);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), options.RequestTimeout);
        Assert.Equal(TimeSpan.FromSeconds(1), options.MetadataMaxAge);
        Assert.Equal(0, options.Retries);
        Assert.Equal(TimeSpan.FromMilliseconds(20), options.RetryBackoff);
        Assert.DoesNotContain("acks", used); // for produce to use, not the connection
        Assert.Contains("socket.timeout.ms", used);

        Assert.Equal("request.timeout.ms: 'soon' is not a whole number",
            Assert.Throws<UsageException>(() => KafkaProperties.Apply(new KafkaClientOptions(), new Dictionary<string, string> { ["request.timeout.ms"] = "soon" }, used)).Message);
        Assert.Throws<UsageException>(() => KafkaProperties.Apply(new KafkaClientOptions(), new Dictionary<string, string> { ["request.timeout.ms"] = "0" }, used));
        Assert.Throws<UsageException>(() => KafkaProperties.Apply(new KafkaClientOptions(), new Dictionary<string, string> { ["client.id"] = " " }, used));
    }

    [Fact]
    public void Properties_files_have_comments_and_both_separators()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cairn-props-{Guid.NewGuid():N}.properties");
        try
        {
            File.WriteAllLines(path, ["# a comment", "! another", "", "  client.id = ops  ", "request.timeout.ms: 5000", "sasl.password=a=b"]);
            Assert.Equal([new("client.id", "ops"), new("request.timeout.ms", "5000"), new("sasl.password", "a=b")], KafkaProperties.ReadFile(path));
            File.WriteAllLines(path, ["client.id"]);
            Assert.Contains(":1: expected key=value", Assert.Throws<UsageException>(() => KafkaProperties.ReadFile(path)).Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Contains("no such file", Assert.Throws<UsageException>(() => KafkaProperties.ReadFile(path)).Message);
    }

    [Fact]
    public void Times_follow_kafkas_tools()
    {
        var plusTwo = TimeZoneInfo.CreateCustomTimeZone("plus-two", TimeSpan.FromHours(2), "plus-two", "plus-two");
        Assert.Equal(OffsetSpec.Latest, OffsetTime.Parse("-1", "--time", plusTwo));
        Assert.Equal(OffsetSpec.Latest, OffsetTime.Parse("latest", "--time", plusTwo));
        Assert.Equal(OffsetSpec.Earliest, OffsetTime.Parse("-2", "--time", plusTwo));
        Assert.Equal(OffsetSpec.Earliest, OffsetTime.Parse("earliest", "--time", plusTwo));
        Assert.Equal(1_795_000_000_000, OffsetTime.Parse("1795000000000", "--time", plusTwo).Value);
        // No zone: local time (here UTC+2); Z and offsets are honoured.
        var utcNoon = new DateTimeOffset(2026, 1, 31, 12, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        Assert.Equal(utcNoon, OffsetTime.Parse("2026-01-31T14:00:00", "--time", plusTwo).Value);
        Assert.Equal(utcNoon, OffsetTime.Parse("2026-01-31 14:00", "--time", plusTwo).Value);
        Assert.Equal(utcNoon, OffsetTime.Parse("2026-01-31T12:00:00Z", "--time", plusTwo).Value);
        Assert.Equal(utcNoon, OffsetTime.Parse("2026-01-31T13:00:00+01:00", "--time", plusTwo).Value);
        Assert.Equal(utcNoon + 250, OffsetTime.Parse("2026-01-31T12:00:00.250Z", "--time", plusTwo).Value);
        Assert.Equal(new DateTimeOffset(2026, 1, 30, 22, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds(), OffsetTime.Parse("2026-01-31", "--time", plusTwo).Value);
        foreach (var bad in new[] { "yesterday", "31/01/2026", "2026-13-01T00:00:00", "", "-3", "1969-12-31T00:00:00Z" })
            Assert.Contains("--time", Assert.Throws<UsageException>(() => OffsetTime.Parse(bad, "--time", plusTwo)).Message);
    }

    [Fact]
    public void Topic_partition_targets()
    {
        Assert.Equal(("orders", (int?)3), TopicRecords.ParseTarget("orders:3"));
        Assert.Equal(("orders", (int?)null), TopicRecords.ParseTarget("orders"));
        Assert.Throws<UsageException>(() => TopicRecords.ParseTarget("orders:x"));
        Assert.Throws<UsageException>(() => TopicRecords.ParseTarget(":1"));
        Assert.Throws<UsageException>(() => TopicRecords.ParseTarget("orders:-1"));
    }

    [Fact]
    public void Patterns_match_whole_names_and_skip_internal_topics()
    {
        TopicListing T(string name, bool isInternal = false) => new(name, Guid.NewGuid(), isInternal, 1);
        var topics = new[] { T("__consumer_offsets", true), T("billing"), T("orders"), T("orders-eu") };
        Assert.Equal(["orders", "orders-eu"], TopicPattern.Select(topics, [], TopicPattern.Compile("orders.*"), includeInternal: false));
        Assert.Equal(["orders"], TopicPattern.Select(topics, [], TopicPattern.Compile("orders"), includeInternal: false)); // not a substring match
        Assert.Equal(["billing", "orders", "orders-eu"], TopicPattern.Select(topics, [], TopicPattern.Compile(".*"), includeInternal: false));
        Assert.Equal(["__consumer_offsets", "billing", "orders", "orders-eu"], TopicPattern.Select(topics, [], null, includeInternal: true));
        Assert.Equal(["billing", "orders"], TopicPattern.Select(topics, ["billing"], TopicPattern.Compile("orders"), includeInternal: false));
        Assert.Throws<ToolException>(() => TopicPattern.Select(topics, [], TopicPattern.Compile("nope.*"), includeInternal: false));
        Assert.Empty(TopicPattern.Select(topics, [], TopicPattern.Compile("nope.*"), includeInternal: false, ignoreMissing: true));
        Assert.Throws<ToolException>(() => TopicPattern.Select(topics, ["missing"], null, includeInternal: false));
        Assert.Contains("'('", Assert.Throws<UsageException>(() => TopicPattern.Compile("(")).Message);
    }
}
