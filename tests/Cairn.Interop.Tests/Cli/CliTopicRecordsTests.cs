using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>`cairn topics describe` of all topics, --pattern, trim, offsets and create --validate-only, checked with kcat.</summary>
[Collection(CliCollection.Name)]
public sealed class CliTopicRecordsTests(CliBrokerFixture fixture)
{
    private CairnCli Cli => new(fixture.Bootstrap);

    private static List<string> Names(JsonElement doc, string property = "topics") =>
        doc.GetProperty(property).EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String ? t.GetString()! : t.GetProperty("name").GetString()!).ToList();

    private static Dictionary<int, long?> Offsets(JsonElement doc) =>
        doc.GetProperty("partitions").EnumerateArray().ToDictionary(p => p.GetProperty("partition").GetInt32(),
            p => p.GetProperty("offset").ValueKind == JsonValueKind.Number ? p.GetProperty("offset").GetInt64() : (long?)null);

    [Fact]
    public Task Describe_all_and_pattern_for_list_describe_and_delete() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var prefix = Topics.Unique("cli-pat");
        string a = prefix + "-a", b = prefix + "-b", other = Topics.Unique("cli-other");
        foreach (var t in new[] { a, b, other }) await Cli.CreateTopicAsync(t, 1);

        var all = Names(await Cli.JsonAsync("topics", "describe"));
        Assert.Contains(a, all);
        Assert.Contains(other, all);
        Assert.DoesNotContain("__consumer_offsets", all);

        Assert.Equal([a, b], Names(await Cli.JsonAsync("topics", "list", "--pattern", prefix + "-.*")));
        Assert.Equal([a, b], Names(await Cli.JsonAsync("topics", "describe", "--pattern", prefix + "-.*")));
        Assert.Empty(Names(await Cli.JsonAsync("topics", "list", "--pattern", prefix))); // the whole name must match
        // Named topics and pattern matches together (names matching ".*-a" from other tests may show up too).
        var both = Names(await Cli.JsonAsync("topics", "describe", other, "--pattern", ".*-a"));
        Assert.Contains(a, both);
        Assert.Contains(other, both);
        Assert.DoesNotContain(b, both);

        // delete --pattern: --dry-run lists and keeps; then they go, the other stays.
        var dry = await Cli.JsonAsync("topics", "delete", "--pattern", prefix + "-.*", "--dry-run");
        Assert.Equal([a, b], Names(dry, "wouldDelete"));
        Assert.Contains(a, (await Cli.OkAsync("topics", "list", "--output", "text")).StdoutLines);
        var table = await Cli.OkAsync("topics", "delete", "--pattern", prefix + "-.*");
        Assert.Contains($"{a}, {b}", table.Stdout);
        var left = (await Cli.OkAsync("topics", "list", "--output", "text")).StdoutLines.ToList();
        Assert.DoesNotContain(a, left);
        Assert.DoesNotContain(b, left);
        Assert.Contains(other, left);

        CairnCli.AssertFails(await Cli.RunAsync("topics", "delete", "--pattern", prefix + "-.*"), 1, "no topic matches");
        await Cli.OkAsync("topics", "delete", "--pattern", prefix + "-.*", "--if-exists");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "describe", "--pattern", "(unclosed"), 2, "not a regular expression");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "delete"), 2, "--pattern");
        // ".*" never reaches internal topics.
        Assert.DoesNotContain("__consumer_offsets", Names(await Cli.JsonAsync("topics", "delete", "--pattern", ".*", "--dry-run"), "wouldDelete"));
    });

    [Fact]
    public Task Offsets_by_time_and_trim() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-trim");
        await Cli.CreateTopicAsync(topic, 2);
        var before = DateTimeOffset.UtcNow.AddSeconds(-2);
        await KcatCheck.ProduceAsync(fixture.Bootstrap, topic, 0, ["a", "b", "c", "d", "e"]);
        await KcatCheck.ProduceAsync(fixture.Bootstrap, topic, 1, ["x", "y", "z"]);

        Assert.Equal(new Dictionary<int, long?> { [0] = 5, [1] = 3 }, Offsets(await Cli.JsonAsync("topics", "offsets", topic)));
        Assert.Equal(new Dictionary<int, long?> { [0] = 5, [1] = 3 }, Offsets(await Cli.JsonAsync("topics", "offsets", topic, "--time", "-1")));
        Assert.Equal(new Dictionary<int, long?> { [0] = 0, [1] = 0 }, Offsets(await Cli.JsonAsync("topics", "offsets", topic, "--time", "-2")));
        // By time: UTC, local time without a zone, epoch milliseconds; after the last record there is none.
        var utc = before.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture) + "Z";
        var local = before.ToLocalTime().ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture);
        foreach (var time in new[] { utc, local, before.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) })
            Assert.Equal(new Dictionary<int, long?> { [0] = 0, [1] = 0 }, Offsets(await Cli.JsonAsync("topics", "offsets", topic, "--time", time)));
        Assert.Equal(new Dictionary<int, long?> { [1] = null }, Offsets(await Cli.JsonAsync("topics", "offsets", $"{topic}:1", "--time", "2099-01-01T00:00:00Z")));
        Assert.Equal(await KcatClient.OffsetForTimeAsync(fixture.Bootstrap, topic, 0, before.ToUnixTimeMilliseconds()),
            Offsets(await Cli.JsonAsync("topics", "offsets", $"{topic}:0", "--time", utc))[0]);
        Assert.Equal([$"{topic}:0:5", $"{topic}:1:3"], (await Cli.OkAsync("topics", "offsets", topic, "--output", "text")).StdoutLines);
        CairnCli.AssertFails(await Cli.RunAsync("topics", "offsets", topic, "--time", "yesterday"), 2, "ISO-8601");

        // trim one partition: its log start moves, kcat reads from there.
        var trimmed = await Cli.JsonAsync("topics", "trim", $"{topic}:0", "--before", "2");
        var p0 = Assert.Single(trimmed.GetProperty("partitions").EnumerateArray());
        Assert.Equal(2, p0.GetProperty("logStartOffset").GetInt64());
        Assert.Equal([2L, 3, 4], (await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 0, 3)).Select(r => r.Offset));
        Assert.Equal(new Dictionary<int, long?> { [0] = 2, [1] = 0 }, Offsets(await Cli.JsonAsync("topics", "offsets", topic, "--time", "-2")));

        // The whole topic up to the end; the table names each partition's new log start.
        var table = (await Cli.OkAsync("topics", "trim", topic, "--before", "end")).StdoutLines.ToList();
        Assert.Contains(table, l => l.StartsWith(topic, StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "0", "5"]);
        Assert.Contains(table, l => l.StartsWith(topic, StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "1", "3"]);
        Assert.Equal(new Dictionary<int, long?> { [0] = 5, [1] = 3 }, Offsets(await Cli.JsonAsync("topics", "offsets", topic, "--time", "earliest")));

        CairnCli.AssertFails(await Cli.RunAsync("topics", "trim", $"{topic}:0", "--before", "99"), 1, "past the log end");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "trim", $"{topic}:7", "--before", "1"), 1, "no partition 7");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "trim", Topics.Unique("missing"), "--before", "1"), 1, "does not exist");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "trim", topic, "--before", "two"), 2, "--before");
        CairnCli.AssertFails(await Cli.RunAsync("topics", "trim", topic), 2, "--before");
    });

    [Fact]
    public Task Create_validate_only_creates_nothing() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-validate");
        var checkedOnly = await Cli.JsonAsync("topics", "create", topic, "--partitions", "4", "--validate-only");
        Assert.True(checkedOnly.GetProperty("valid").GetBoolean(), checkedOnly.ToString());
        Assert.False(checkedOnly.GetProperty("created").GetBoolean());
        Assert.Equal(4, checkedOnly.GetProperty("partitions").GetInt32());
        Assert.DoesNotContain(topic, (await Cli.OkAsync("topics", "list", "--output", "text")).StdoutLines);
        var md = await KcatClient.MetadataAsync(fixture.Bootstrap);
        Assert.DoesNotContain(md.GetProperty("topics").EnumerateArray(), t => t.GetProperty("topic").GetString() == topic);

        Assert.Contains("nothing was created", (await Cli.OkAsync("topics", "create", topic, "--validate-only")).Stdout);
        await Cli.CreateTopicAsync(topic, 1);
        CairnCli.AssertFails(await Cli.RunAsync("topics", "create", topic, "--validate-only"), 1, "already exists");
    });

    /// <summary>Runs `cairn ARGS` on a pseudo-terminal 80 columns wide (util-linux `script`), as a person would see it.</summary>
    private async Task<List<string>> OnTerminalAsync(params string[] args)
    {
        static string Quote(string a) => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
        var command = string.Join(' ', new[] { Paths.DotnetHost, Paths.CairnDll }.Concat(args).Concat(["--bootstrap-server", fixture.Bootstrap]).Select(Quote));
        var r = await ChildProcess.RunAsync("script", ["-qec", $"stty cols 80 rows 60; {command}", "/dev/null"], TimeSpan.FromSeconds(60), stdin: []);
        Assert.True(r.ExitCode == 0, r.Describe());
        // The table rows (spinner frames and colours stripped).
        return Regex.Replace(r.Stdout, @"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "").Split('\n')
            .Select(l => l.Split('\r', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
            .Where(l => l.IndexOfAny(['│', '╭', '├', '╰']) >= 0).Select(l => l.Trim()).ToList();
    }

    [Fact]
    public Task Tables_fit_80_columns_without_splitting_words() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-width-with-a-longer-topic-name");
        await Cli.CreateTopicAsync(topic, 2);
        await KcatCheck.ProduceAsync(fixture.Bootstrap, topic, 0, ["a"]);
        string[][] commands =
        [
            ["cluster", "info"], ["topics", "list"], ["topics", "describe", topic, "--all-configs"], ["topics", "offsets", topic, "--time", "-2"],
            ["topics", "offsets", topic, "--time", "2000-01-01T00:00:00Z"], ["topics", "trim", topic, "--before", "0"],
        ];
        foreach (var command in commands)
        {
            var rows = await OnTerminalAsync(command);
            var what = $"cairn {string.Join(' ', command)}:\n{string.Join('\n', rows)}";
            Assert.True(rows.Count >= 3, what);
            Assert.All(rows, row => Assert.True(row.Length <= 80, $"{row.Length} columns: {what}"));
            // No cell is continued on a second line: every row with a border starts a new record, none is all blank but one cell.
            var cells = rows.Where(r => r.StartsWith('│')).Select(r => r.Trim('│').Split('│').Select(c => c.Trim()).ToList()).ToList();
            Assert.All(cells, c => Assert.True(c.Count(x => x.Length > 0) >= Math.Min(2, c.Count), $"a wrapped cell: {what}"));
            Assert.Contains(rows, r => r.Contains(command[0] == "cluster" ? "Produce" : command[1] == "describe" ? "retention.ms" : "PARTITION", StringComparison.Ordinal));
        }
    });
}
