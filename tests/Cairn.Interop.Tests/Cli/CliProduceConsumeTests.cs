using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>`cairn produce` from stdin and `cairn consume` with start positions, counts, formats and --group.</summary>
[Collection(CliCollection.Name)]
public sealed class CliProduceConsumeTests(CliBrokerFixture fixture)
{
    private CairnCli Cli => new(fixture.Bootstrap);

    [Fact]
    public Task Produce_lines_with_key_separator_headers_and_partition_then_consume_with_a_format() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-pc");
        await Cli.CreateTopicAsync(topic, 2);

        var produced = await Cli.RunAsync(["produce", topic, "--key-separator", "::", "--header", "source=cli", "--header", "trace=t-1", "--partition", "1"],
            "user1::login\nuser2::logout: bye\nno key here\n\nünïcödé::välue\n");
        produced.EnsureSuccess();
        Assert.Contains("Produced 4 records", produced.Stderr);

        // kcat, independently: keys split at the first separator, a line without it has a null key, headers on every record.
        var seen = await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 1, 4);
        Assert.Equal([0L, 1, 2, 3], seen.Select(r => r.Offset));
        Assert.Equal(["user1", "user2", null, "ünïcödé"], seen.Select(r => r.Key is null ? null : Encoding.UTF8.GetString(r.Key)));
        Assert.Equal(["login", "logout: bye", "no key here", "välue"], seen.Select(r => Encoding.UTF8.GetString(r.Value!)));
        Assert.All(seen, r => Assert.Equal("source=cli,trace=t-1", Encoding.UTF8.GetString(r.HeadersRendered!)));

        // The format string: key, value, offset, partition, timestamp, headers, lengths, topic.
        var before = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeMilliseconds();
        var consumed = await Cli.OkAsync("consume", topic, "--exit-at-end", "--format", "%k|%v|%o|%p|%T|%h|%K|%S|%t\\n");
        var lines = consumed.StdoutLines.ToList();
        Assert.Equal(4, lines.Count);
        var f = lines.Select(l => l.Split('|')).ToList();
        Assert.Equal(["user1", "user2", "", "ünïcödé"], f.Select(x => x[0]));
        Assert.Equal(["login", "logout: bye", "no key here", "välue"], f.Select(x => x[1]));
        Assert.Equal(["0", "1", "2", "3"], f.Select(x => x[2]));
        Assert.All(f, x => Assert.Equal("1", x[3]));
        Assert.All(f, x => Assert.InRange(long.Parse(x[4], CultureInfo.InvariantCulture), before, before + 3_600_000));
        Assert.Equal(seen.Select(r => r.Timestamp.ToString(CultureInfo.InvariantCulture)), f.Select(x => x[4]));
        Assert.All(f, x => Assert.Equal("source=cli,trace=t-1", x[5]));
        Assert.Equal(["5", "5", "-1", "11"], f.Select(x => x[6]));
        Assert.Equal(["5", "11", "11", "6"], f.Select(x => x[7]));
        Assert.All(f, x => Assert.Equal(topic, x[8]));
    });

    [Fact]
    public Task Consume_from_offset_end_and_timestamp_with_count_and_json_lines() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-from");
        await Cli.CreateTopicAsync(topic, 1);
        await Cli.OkWithStdinAsync(string.Concat(Enumerable.Range(0, 5).Select(i => $"k{i}=v{i}\n")), "produce", topic, "-K", "=");
        await Task.Delay(1100);
        var middle = DateTimeOffset.UtcNow;
        await Task.Delay(100);
        await Cli.OkWithStdinAsync(string.Concat(Enumerable.Range(5, 5).Select(i => $"k{i}=v{i}\n")), "produce", topic, "-K", "=", "--compression", "zstd");

        async Task<List<string>> Values(params string[] args) =>
            (await Cli.OkAsync(["consume", topic, "-e", .. args])).StdoutLines.ToList();

        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"v{i}"), await Values());
        Assert.Equal(["v7", "v8", "v9"], await Values("--from", "7"));
        Assert.Equal(["v7", "v8", "v9"], await Values("--from", "-3"));
        Assert.Empty(await Values("--from", "latest"));
        Assert.Equal(["v2", "v3"], await Values("--from", "2", "-c", "2"));
        Assert.Equal(["v5", "v6", "v7", "v8", "v9"], await Values("--from", middle.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)));
        Assert.Equal(["v5", "v6", "v7", "v8", "v9"], await Values("--from", "@" + middle.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)));

        // -c alone (no -e) exits after N records; JSON lines parse.
        var json = await Cli.OkAsync("consume", topic, "-c", "3", "--output", "json");
        var records = json.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([0L, 1, 2], records.Select(r => r.GetProperty("offset").GetInt64()));
        Assert.Equal(["k0", "k1", "k2"], records.Select(r => r.GetProperty("key").GetString()));
        Assert.Equal(["v0", "v1", "v2"], records.Select(r => r.GetProperty("value").GetString()));
        Assert.All(records, r => Assert.Equal(topic, r.GetProperty("topic").GetString()));
    });

    [Theory]
    [InlineData("gzip")]
    [InlineData("snappy")]
    [InlineData("lz4")]
    [InlineData("zstd")]
    public Task Produce_compressed_batches_that_kcat_reads(string codec) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-z");
        await Cli.CreateTopicAsync(topic, 1);
        var values = Enumerable.Range(0, 50).Select(i => $"{codec}-value-{i}-" + new string('x', i)).ToList();
        await Cli.OkWithStdinAsync(string.Join('\n', values) + "\n", "produce", topic, "--compression", codec);
        var seen = await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 0, values.Count);
        Assert.Equal(values, seen.Select(r => Encoding.UTF8.GetString(r.Value!)));
    });

    [Fact]
    public Task Consume_with_a_group_starts_at_its_offsets_and_commits_what_it_read() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-cg");
        var group = Topics.Unique("cli-cg-group");
        await Cli.CreateTopicAsync(topic, 2);
        await Cli.OkWithStdinAsync("a\nb\nc\n", "produce", topic, "-p", "0");
        await Cli.OkWithStdinAsync("d\ne\n", "produce", topic, "-p", "1");

        // No offsets yet: from --from (earliest); -c 2 reads two records, then commits the positions.
        var first = await Cli.OkAsync("consume", topic, "--group", group, "-p", "0", "-c", "2");
        Assert.Equal(["a", "b"], first.StdoutLines);
        Assert.Equal(new Dictionary<int, long> { [0] = 2 }, await Cli.CommittedAsync(group, topic));

        var rest = await Cli.OkAsync("consume", topic, "--group", group, "-e", "-f", "%p:%v\\n");
        Assert.Equal(["0:c", "1:d", "1:e"], rest.StdoutLines.Order());
        Assert.Equal(new Dictionary<int, long> { [0] = 3, [1] = 2 }, await Cli.CommittedAsync(group, topic));

        var none = await Cli.OkAsync("consume", topic, "--group", group, "-e");
        Assert.Empty(none.StdoutLines);

        // kcat -G continues where cairn left off.
        await Cli.OkWithStdinAsync("f\n", "produce", topic, "-p", "1");
        var read = await KcatCheck.GroupReadAsync(fixture.Bootstrap, group, topic);
        Assert.False(read.ContainsKey(0), $"kcat read partition 0 again: {string.Join(",", read.GetValueOrDefault(0) ?? [])}");
        Assert.Equal([2L], read[1]);
    });
}
