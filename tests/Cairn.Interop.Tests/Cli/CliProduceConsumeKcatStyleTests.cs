using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// The kcat-style produce and consume flags of issue 8: glued -K:, -D, -k, -Z, --timestamp, -v, auto-create; several
/// topics, --pattern, --until, %D, hex/base64, --idle-timeout and the closing summary; producer and consumer -X properties. What cairn produced is read back
/// with kcat, independently of cairn.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliProduceConsumeKcatStyleTests(CliBrokerFixture fixture)
{
    private CairnCli Cli => new(fixture.Bootstrap);

    private static string Text(byte[]? bytes) => bytes is null ? "NULL" : Encoding.UTF8.GetString(bytes);

    [Theory]
    [InlineData("-K:")]
    [InlineData("-K", ":")]
    [InlineData("--key-separator=:")]
    public Task Readme_produce_example_splits_keys_at_the_glued_separator(params string[] separator) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-k");
        await Cli.CreateTopicAsync(topic, 1);
        var produced = await Cli.RunAsync(["produce", topic, .. separator, "-H", "source=cli", "-z", "zstd"], "k1:v1\nk2:v2\n");
        produced.EnsureSuccess();
        Assert.Contains("Produced 2 records", produced.Stderr);

        var seen = await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 0, 2);
        Assert.Equal(["k1", "k2"], seen.Select(r => Text(r.Key)));
        Assert.Equal(["v1", "v2"], seen.Select(r => Text(r.Value)));
        Assert.All(seen, r => Assert.Equal("source=cli", Text(r.HeadersRendered)));
    });

    [Fact]
    public Task Tombstones_fixed_keys_delimiters_timestamps_and_delivery_reports() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-z");
        await Cli.CreateTopicAsync(topic, 1);

        // -Z: 'k1:' is a tombstone (null value); -v reports each record on stderr.
        var first = await Cli.RunAsync(["produce", topic, "-K:", "-Z", "-v"], "k1:v1\nk1:\n");
        first.EnsureSuccess();
        Assert.Contains($"delivered {topic} [0] at offset 0", first.Stderr);
        Assert.Contains($"delivered {topic} [0] at offset 1", first.Stderr);

        // -D with an escape and a fixed key (-k glued), an ISO-8601 timestamp.
        var iso = DateTimeOffset.UtcNow.AddMinutes(-30);
        iso = DateTimeOffset.FromUnixTimeMilliseconds(iso.ToUnixTimeMilliseconds());
        await Cli.OkWithStdinAsync("a\nstill a\0b\0", "produce", topic, "-D", "\\0", "-kfixed",
            "--timestamp", iso.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
        // A glued -D;, a timestamp in ms; the last record needs no delimiter.
        long ms = DateTimeOffset.UtcNow.AddMinutes(-20).ToUnixTimeMilliseconds();
        await Cli.OkWithStdinAsync("c;d", "produce", topic, "-D;", "--timestamp", ms.ToString(CultureInfo.InvariantCulture));

        var seen = await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 0, 6);
        Assert.Equal(["k1", "k1", "fixed", "fixed", "NULL", "NULL"], seen.Select(r => Text(r.Key)));
        Assert.Equal(["v1", "NULL", "a\nstill a", "b", "c", "d"], seen.Select(r => Text(r.Value)));
        Assert.Null(seen[1].Value);
        Assert.Equal([iso.ToUnixTimeMilliseconds(), iso.ToUnixTimeMilliseconds(), ms, ms], seen.Skip(2).Select(r => r.Timestamp));

        // cairn's own view: %D is the same instant as kcat's %T.
        var consumed = await Cli.OkAsync("consume", topic, "-e", "-f", "%o %D %K %V\\n");
        var lines = consumed.StdoutLines.Select(l => l.Split(' ')).ToList();
        Assert.Equal(seen.Select(r => DateTimeOffset.FromUnixTimeMilliseconds(r.Timestamp).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)),
            lines.Select(l => l[1]));
        Assert.Equal("-1", lines[1][3]);
        Assert.Contains("Consumed 6 records", consumed.Stderr);
    });

    [Fact]
    public async Task Produce_creates_a_missing_topic_when_the_broker_auto_creates_and_names_it_when_it_does_not()
    {
        await using var autoCreating = await BrokerProcess.StartAsync(new BrokerOptions { AutoCreateTopics = true, DefaultPartitions = 1 });
        var topic = Topics.Unique("cli-auto");
        var produced = await new CairnCli(autoCreating.Bootstrap).RunAsync(["produce", topic, "-K:"], "k:v\n");
        produced.EnsureSuccess();
        var seen = await KcatCheck.ReadPartitionAsync(autoCreating.Bootstrap, topic, 0, 1);
        Assert.Equal("v", Text(seen.Single().Value));

        // The shared CLI broker does not auto-create: one line naming the topic, exit code 1.
        var missing = Topics.Unique("cli-noauto");
        var refused = await Cli.RunAsync(["produce", missing], "v\n");
        CairnCli.AssertFails(refused, 1, $"topic '{missing}' does not exist");
        Assert.DoesNotContain("   at ", refused.Stderr);
        Assert.Single(refused.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public Task Consume_several_topics_and_patterns_until_an_offset_or_a_time() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var prefix = Topics.Unique("cli-multi");
        string a = prefix + "-a", b = prefix + "-b";
        await Cli.CreateTopicAsync(a, 1);
        await Cli.CreateTopicAsync(b, 2);
        long old = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();
        await Cli.OkWithStdinAsync("a0\na1\na2\n", "produce", a, "--timestamp", old.ToString(CultureInfo.InvariantCulture));
        await Cli.OkWithStdinAsync("a3\na4\n", "produce", a);
        await Cli.OkWithStdinAsync("b0\n", "produce", b, "-p", "1");

        async Task<List<string>> Lines(params string[] args) => (await Cli.OkAsync(["consume", .. args, "-f", "%t:%p:%v\\n"])).StdoutLines.Order().ToList();
        List<string> all = [$"{a}:0:a0", $"{a}:0:a1", $"{a}:0:a2", $"{a}:0:a3", $"{a}:0:a4", $"{b}:1:b0"];
        Assert.Equal(all, await Lines(a, b, "-e"));
        Assert.Equal(all, await Lines("--pattern", prefix + "-[ab]", "-e"));
        Assert.Equal(all, await Lines("^" + prefix + ".*", "-e"));
        // Whole names only: a pattern matching part of a name selects nothing.
        CairnCli.AssertFails(await Cli.RunAsync("consume", "--pattern", prefix), 1, "no topic matches --pattern");
        CairnCli.AssertFails(await Cli.RunAsync("consume", "--pattern", "(" + prefix), 2, "not a valid regular expression");
        CairnCli.AssertFails(await Cli.RunAsync("consume", a, prefix + "-zzz"), 1, $"topic '{prefix}-zzz' does not exist");

        // --until stops each partition without -e: before offset 2, or at the first record at or after a time.
        // A partition short of the offset waits for it (as a consumer does); -e ends those at their end.
        Assert.Equal([$"{a}:0:a0", $"{a}:0:a1"], await Lines(a, "--until", "2"));
        Assert.Equal([$"{a}:0:a0", $"{a}:0:a1", $"{b}:1:b0"], await Lines(a, b, "--until", "2", "-e"));
        var cut = DateTimeOffset.FromUnixTimeMilliseconds(old + 60_000).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        Assert.Equal([$"{a}:0:a0", $"{a}:0:a1", $"{a}:0:a2"], await Lines(a, "--until", cut));
        Assert.Equal([$"{a}:0:a0", $"{a}:0:a1", $"{a}:0:a2"], await Lines(a, "--until", "@" + (old + 1).ToString(CultureInfo.InvariantCulture)));
        CairnCli.AssertFails(await Cli.RunAsync("consume", a, "--until", "tomorrow"), 2, "--until");
    });

    [Fact]
    public Task Consume_binary_as_hex_or_base64_with_an_idle_timeout_and_a_summary() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-bin");
        await Cli.CreateTopicAsync(topic, 1);
        await Cli.OkWithStdinAsync("ké:\u0001é\n", "produce", topic, "-K:");

        // No -e, no -c: the idle timeout ends it, exit code 0, the records on stdout and the summary on stderr.
        var hex = await Cli.RunAsync(["consume", topic, "--idle-timeout", "1s", "--key-format", "hex", "--value-format", "base64", "-f", "%k %v\\n"], null,
            timeout: TimeSpan.FromSeconds(30));
        hex.EnsureSuccess();
        Assert.Equal(["6bc3a9 AcOp"], hex.StdoutLines);
        Assert.Contains("Consumed 1 record from " + topic, hex.Stderr);
        Assert.Contains("no record for 1s", hex.Stderr);

        var json = await Cli.OkAsync("consume", topic, "-c", "1", "--output", "json", "--value-format", "hex");
        var record = JsonDocument.Parse(json.StdoutLines.Single()).RootElement;
        Assert.Equal("ké", record.GetProperty("key").GetString());
        Assert.Equal("01c3a9", record.GetProperty("value").GetString());
        Assert.Contains("Consumed 1 record", json.Stderr);
        Assert.DoesNotContain("Consumed", json.Stdout);
    });

    [Fact]
    public Task Bad_produce_and_consume_input_is_one_line_with_the_usage_or_failure_exit_code() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-bad");
        await Cli.CreateTopicAsync(topic, 1);
        CairnCli.AssertFails(await Cli.RunAsync(["produce", topic, "--timestamp", "yesterday"], ""), 2, "--timestamp: 'yesterday' is not a timestamp");
        CairnCli.AssertFails(await Cli.RunAsync(["produce", topic, "-K:", "-k", "x"], ""), 2, "cannot be used together");
        var missingFile = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "lines.txt");
        CairnCli.AssertFails(await Cli.RunAsync("produce", topic, "--file", missingFile), 1, $"cannot read --file {missingFile}: no such file");
        CairnCli.AssertFails(await Cli.RunAsync("consume", topic, "--idle-timeout", "soon"), 2, "--idle-timeout: 'soon' is not a duration");
        CairnCli.AssertFails(await Cli.RunAsync("consume", topic, "--value-format", "binary"), 2, "--value-format must be text, hex or base64");
        CairnCli.AssertFails(await Cli.RunAsync("consume"), 2, "name a topic");
        var badUntil = await Cli.RunAsync("consume", topic, "--until", "x");
        CairnCli.AssertFails(badUntil, 2, "--until: 'x' is not an offset");
        Assert.DoesNotContain("System.", badUntil.Stderr);
    });

    /// <summary>Size on disk of partition 0, as `cairn topics describe` reports it (DescribeLogDirs).</summary>
    private async Task<long> SizeOnDiskAsync(string topic)
    {
        var doc = await Cli.JsonAsync("topics", "describe", topic);
        return doc.GetProperty("topics")[0].GetProperty("partitions")[0].GetProperty("sizeBytes").GetInt64();
    }

    [Fact]
    public Task Produce_honours_kafka_producer_properties_and_explicit_flags_win() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        string zstd = Topics.Unique("cli-xzstd"), flagged = Topics.Unique("cli-xnone");
        await Cli.CreateTopicAsync(zstd, 1);
        await Cli.CreateTopicAsync(flagged, 1);
        var values = Enumerable.Range(0, 200).Select(i => $"{i}-" + new string('x', 500)).ToList();
        var lines = string.Join('\n', values) + "\n";

        // The codec shows in the size on disk: 200 records of 500 x's compress to almost nothing with zstd.
        var compressed = await Cli.RunAsync(["produce", zstd, "-X", "compression.type=zstd", "-X", "linger.ms=20", "-X", "batch.size=1000000",
            "-X", "enable.idempotence=true", "-X", "max.in.flight.requests.per.connection=1", "-X", "message.timeout.ms=30000"], lines);
        compressed.EnsureSuccess();
        Assert.DoesNotContain("warning", compressed.Stderr);
        // -z given on the command line beats the property (librdkafka's name here).
        var plain = await Cli.RunAsync(["produce", flagged, "-z", "none", "-X", "compression.codec=zstd"], lines);
        plain.EnsureSuccess();
        Assert.DoesNotContain("warning", plain.Stderr);
        long compressedSize = await SizeOnDiskAsync(zstd), plainSize = await SizeOnDiskAsync(flagged);
        Assert.True(plainSize > 200 * 500, $"uncompressed size {plainSize}");
        Assert.True(compressedSize * 10 < plainSize, $"zstd {compressedSize} bytes, none {plainSize} bytes");
        Assert.Equal(values, (await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, zstd, 0, 200)).Select(r => Text(r.Value)));

        // acks=0 shows in the delivery report (no offsets come back); --acks given explicitly wins over -X acks.
        var noAcks = await Cli.RunAsync(["produce", zstd, "-v", "-X", "acks=0"], "a\n");
        noAcks.EnsureSuccess();
        Assert.Contains($"delivered {zstd} [0] (acks 0: offset unknown)", noAcks.Stderr);
        var leaderAcks = await Cli.RunAsync(["produce", zstd, "-v", "--acks", "1", "-X", "request.required.acks=0"], "b\n");
        leaderAcks.EnsureSuccess();
        Assert.Contains($"delivered {zstd} [0] at offset 201", leaderAcks.Stderr);

        // Invalid values: one line naming the property, exit code 2.
        var badAcks = await Cli.RunAsync(["produce", zstd, "-X", "acks=2"], "c\n");
        CairnCli.AssertFails(badAcks, 2, "cairn produce: acks: '2' is not all, -1, 1 or 0");
        Assert.DoesNotContain("   at ", badAcks.Stderr);
        CairnCli.AssertFails(await Cli.RunAsync(["produce", zstd, "-X", "compression.type=brotli"], "c\n"), 2, "compression.type: 'brotli'");
        CairnCli.AssertFails(await Cli.RunAsync(["produce", zstd, "-X", "enable.idempotence=true", "-X", "acks=1"], "c\n"), 2,
            "enable.idempotence=true needs acks=all");
        // What the producer cannot honour is said, not pretended.
        var unused = await Cli.RunAsync(["produce", zstd, "-X", "partitioner=murmur2"], "d\n");
        unused.EnsureSuccess();
        Assert.Contains("warning: client property 'partitioner' is not used by 'cairn produce'", unused.Stderr);
    });

    [Fact]
    public Task Consume_honours_auto_offset_reset_group_id_and_the_fetch_properties() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-xreset");
        await Cli.CreateTopicAsync(topic, 1);
        await Cli.OkWithStdinAsync("r0\nr1\nr2\n", "produce", topic);

        async Task<ProcessResult> Consume(params string[] args)
        {
            var r = (await Cli.RunAsync(["consume", topic, "-e", .. args])).EnsureSuccess();
            Assert.DoesNotContain("warning", r.Stderr);
            return r;
        }
        // Without -o, auto.offset.reset says where to start (cairn's default is the earliest).
        Assert.Equal(["r0", "r1", "r2"], (await Consume()).StdoutLines);
        Assert.Equal(["r0", "r1", "r2"], (await Consume("-X", "auto.offset.reset=earliest")).StdoutLines);
        var latest = await Consume("-X", "auto.offset.reset=latest");
        Assert.Empty(latest.StdoutLines);
        Assert.Contains("Consumed 0 records", latest.Stderr);
        Assert.Empty((await Consume("-X", "auto.offset.reset=largest")).StdoutLines);
        // -o given explicitly wins; -X beats --command-config.
        Assert.Equal(["r0", "r1", "r2"], (await Consume("-o", "earliest", "-X", "auto.offset.reset=latest")).StdoutLines);
        Assert.Equal(["r2"], (await Consume("-o", "-1", "-X", "auto.offset.reset=earliest")).StdoutLines);
        var config = Path.Combine(Path.GetTempPath(), $"cairn-{Guid.NewGuid():N}.properties");
        await File.WriteAllTextAsync(config, "auto.offset.reset=latest\n");
        try
        {
            Assert.Empty((await Consume("--command-config", config)).StdoutLines);
            Assert.Equal(["r0", "r1", "r2"], (await Consume("--command-config", config, "-X", "auto.offset.reset=smallest")).StdoutLines);
        }
        finally
        {
            File.Delete(config);
        }
        // isolation.level and the fetch sizes and wait are taken (no "not used" warning).
        Assert.Equal(["r0", "r1", "r2"], (await Consume("-X", "isolation.level=read_committed", "-X", "fetch.max.bytes=1048576",
            "-X", "max.partition.fetch.bytes=65536", "-X", "fetch.wait.max.ms=100", "-X", "fetch.min.bytes=1")).StdoutLines);

        // group.id is --group; a group without a committed offset starts per auto.offset.reset and commits where it stopped.
        var group = Topics.Unique("cli-xgroup");
        Assert.Empty((await Consume("-X", "group.id=" + group, "-X", "auto.offset.reset=latest")).StdoutLines);
        Assert.Equal(new Dictionary<int, long> { [0] = 3 }, await Cli.CommittedAsync(group, topic));
        await Cli.OkWithStdinAsync("r3\nr4\n", "produce", topic);
        // enable.auto.commit=false: read from the committed offset, commit nothing.
        Assert.Equal(["r3", "r4"], (await Consume("-X", "group.id=" + group, "-X", "enable.auto.commit=false")).StdoutLines);
        Assert.Equal(new Dictionary<int, long> { [0] = 3 }, await Cli.CommittedAsync(group, topic));
        Assert.Equal(["r3", "r4"], (await Consume("-g", group, "-X", "auto.offset.reset=none")).StdoutLines);
        Assert.Equal(new Dictionary<int, long> { [0] = 5 }, await Cli.CommittedAsync(group, topic));
        // auto.offset.reset=none and no committed offset: an error, as Kafka's consumer gives.
        CairnCli.AssertFails(await Cli.RunAsync("consume", topic, "-e", "-g", Topics.Unique("cli-xnew"), "-X", "auto.offset.reset=none"), 1,
            "auto.offset.reset is none");

        CairnCli.AssertFails(await Cli.RunAsync("consume", topic, "-e", "-X", "auto.offset.reset=oldest"), 2, "auto.offset.reset: 'oldest' is not earliest");
        CairnCli.AssertFails(await Cli.RunAsync("consume", topic, "-e", "-X", "isolation.level=serializable"), 2, "isolation.level: 'serializable'");
        var unused = (await Cli.RunAsync("consume", topic, "-e", "-X", "session.timeout.ms=6000")).EnsureSuccess();
        Assert.Contains("warning: client property 'session.timeout.ms' is not used by 'cairn consume'", unused.Stderr);
    });
}
