using System.Diagnostics;
using System.Text.Json;
using System.Text;
using Cairn.Client;
using Cairn.Offsets;
using Cairn.Protocol.Records;

namespace Cairn.Tests.Client;

public sealed class KcatInteropTests : ClientTestBase
{
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunKcatAsync(string[] arguments, string? stdin = null, int timeoutSeconds = 30)
    {
        var psi = new ProcessStartInfo("kcat", arguments)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException("kcat is not installed (apt-get install kcat; bash test.sh installs it)");
        }
        using var _ = process;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kcat {string.Join(" ", arguments)} did not finish within {timeoutSeconds} s; stderr: {await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    private string Brokers => $"127.0.0.1:{Broker.Port}";

    private sealed record Seen(int Partition, long Offset, long Timestamp, string? Key, string? Value, List<(string Key, string? Value)> Headers);

    /// <summary>What kcat reads (JSON output keeps null apart from empty, and headers in order).</summary>
    private async Task<List<Seen>> KcatReadAsync(string topic, int? partition = null)
    {
        List<string> args = ["-C", "-b", Brokers, "-t", topic, "-o", "beginning", "-e", "-J", "-X", "check.crcs=true"];
        if (partition is { } p) args.AddRange(["-p", p.ToString()]);
        var (exit, stdout, stderr) = await RunKcatAsync([.. args]);
        Assert.True(exit == 0, $"kcat failed ({exit}): {stderr}");
        Assert.DoesNotContain("CRC", stderr);
        var seen = new List<Seen>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var headers = new List<(string, string?)>();
            if (root.TryGetProperty("headers", out var h))
                for (int i = 0; i < h.GetArrayLength(); i += 2) headers.Add((h[i].GetString()!, h[i + 1].ValueKind == JsonValueKind.Null ? null : h[i + 1].GetString()));
            seen.Add(new Seen(root.GetProperty("partition").GetInt32(), root.GetProperty("offset").GetInt64(), root.GetProperty("ts").GetInt64(),
                root.GetProperty("key").ValueKind == JsonValueKind.Null ? null : root.GetProperty("key").GetString(),
                root.GetProperty("payload").ValueKind == JsonValueKind.Null ? null : root.GetProperty("payload").GetString(),
                headers));
        }
        return seen;
    }

    private static Seen FromCairn(ConsumeResult r) => new(r.Partition, r.Offset, r.Timestamp.ToUnixTimeMilliseconds(), r.KeyAsString(), r.ValueAsString(),
        r.Headers.Select(h => (h.Key, Text(h.Value))).ToList());

    private static void AssertSame(IReadOnlyList<Seen> expected, IReadOnlyList<Seen> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            Assert.Equal((e.Partition, e.Offset, e.Timestamp, e.Key, e.Value), (a.Partition, a.Offset, a.Timestamp, a.Key, a.Value));
            Assert.Equal(e.Headers, a.Headers);
        }
    }

    public static TheoryData<string> Codecs => new() { "none", "gzip", "snappy", "lz4", "zstd" };

    private static CompressionCodec Codec(string name) => Enum.Parse<CompressionCodec>(name, ignoreCase: true);

    [Theory]
    [MemberData(nameof(Codecs))]
    public async Task What_cairn_produces_kcat_reads_identically(string codec)
    {
        var topic = await CreateTopicAsync("to-kcat-" + codec);
        var t0 = new DateTimeOffset(2025, 2, 3, 4, 5, 6, 789, TimeSpan.Zero);
        var messages = new List<Message>
        {
            Message.FromStrings("k0", "v0", [new RecordHeader("h1", Bytes("a"))], t0),
            Message.FromStrings(null, "no-key", null, t0.AddMilliseconds(1)),
            Message.FromStrings("", "", null, t0.AddMilliseconds(2)),
            Message.FromStrings("k3", null, null, t0.AddMilliseconds(3)),
            Message.FromStrings("ключ", "値 ✓", [new RecordHeader("h", (byte[]?)null), new RecordHeader("h", Array.Empty<byte>()), new RecordHeader("x", Bytes("y"))], t0.AddSeconds(-1)),
            Message.FromStrings(null, null, null, t0.AddMilliseconds(5)),
        };
        for (int i = 6; i < 60; i++) messages.Add(Message.FromStrings("key-" + i, new string('z', i) + i, [new RecordHeader("n", Bytes(i.ToString()))], t0.AddMilliseconds(i)));
        var producer = Producer(new ProducerOptions { Compression = Codec(codec), Linger = TimeSpan.FromMilliseconds(20), BatchSizeBytes = 1500 });
        var delivered = await Task.WhenAll(messages.Select(m => producer.ProduceAsync(new TopicPartition(topic, 0), m)));
        Assert.True((await ReadBatchesAsync(topic)).Count > 1);

        var expected = messages.Select((m, i) => new Seen(0, delivered[i].Offset, m.Timestamp!.Value.ToUnixTimeMilliseconds(), Text(m.Key), Text(m.Value),
            (m.Headers ?? []).Select(h => (h.Key, Text(h.Value))).ToList())).ToList();
        AssertSame(expected, await KcatReadAsync(topic));

        // The plain-text format agrees too (key and value sizes tell null, -1, from empty, 0).
        var (_, text, _) = await RunKcatAsync(["-C", "-b", Brokers, "-t", topic, "-o", "beginning", "-e", "-X", "check.crcs=true", "-f", "%o|%T|%K|%S|%k|%s|%h\\n"]);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(messages.Count, lines.Length);
        long ts = t0.ToUnixTimeMilliseconds();
        Assert.Equal($"0|{ts}|2|2|k0|v0|h1=a", lines[0]);
        Assert.Equal($"1|{ts + 1}|-1|6||no-key|", lines[1]);
        Assert.Equal($"2|{ts + 2}|0|0|||", lines[2]);
        Assert.Equal($"3|{ts + 3}|2|-1|k3||", lines[3]);
        Assert.Equal($"5|{ts + 5}|-1|-1|||", lines[5]);
        for (int i = 6; i < 60; i++) Assert.Equal($"{i}|{ts + i}|{("key-" + i).Length}|{i + i.ToString().Length}|key-{i}|{new string('z', i)}{i}|n={i}", lines[i]);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public async Task What_kcat_produces_cairn_reads_identically(string codec)
    {
        var topic = await CreateTopicAsync("from-kcat-" + codec);
        var lines = new StringBuilder();
        lines.Append("k1:v1\nk2:\n:v3\n:\nk5:a:b\nключ:値\n");
        for (int i = 0; i < 40; i++) lines.Append($"key{i}:{new string('q', i)}{i}\n");
        // Without -Z empty keys and values stay empty; with -Z they become null.
        foreach (var nulls in new[] { false, true })
        {
            List<string> args = ["-P", "-b", Brokers, "-t", topic, "-p", "0", "-K:", "-z", codec, "-X", "linger.ms=100",
                "-H", "h1=v1", "-H", "empty=", "-H", "null", "-H", "h1=again"];
            if (nulls) args.Add("-Z");
            var (exit, _, stderr) = await RunKcatAsync([.. args], lines.ToString());
            Assert.True(exit == 0, $"kcat failed ({exit}): {stderr}");
        }
        // librdkafka sends a batch uncompressed when compressing does not make it smaller (a lone small record).
        var compressions = (await ReadBatchesAsync(topic)).Select(b => b.Header.Compression).ToList();
        Assert.Contains(Codec(codec), compressions);
        Assert.All(compressions, c => Assert.Contains(c, new[] { Codec(codec), CompressionCodec.None }));

        var byKcat = await KcatReadAsync(topic);
        Assert.Equal(92, byKcat.Count);
        Assert.Equal(("", ""), (byKcat[3].Key, byKcat[3].Value));        // ":" without -Z
        Assert.Equal((null, null), (byKcat[49].Key, byKcat[49].Value));  // ":" with -Z
        Assert.Equal([("h1", "v1"), ("empty", ""), ("null", null), ("h1", "again")], byKcat[0].Headers);

        var consumer = Consumer();
        consumer.Assign([new TopicPartition(topic, 0)]);
        await consumer.SeekAsync(new TopicPartition(topic, 0), Offset.Earliest);
        var byCairn = (await ConsumeAsync(consumer, byKcat.Count)).Select(FromCairn).ToList();
        AssertSame(byKcat, byCairn);
    }

    [Fact]
    public async Task Keyed_records_land_where_librdkafka_murmur2_puts_them()
    {
        var topic = await CreateTopicAsync("partitioned", partitions: 7);
        var keys = Enumerable.Range(0, 60).Select(i => "user-" + i * 37).ToList();
        var (exit, _, stderr) = await RunKcatAsync(["-P", "-b", Brokers, "-t", topic, "-K:", "-X", "partitioner=murmur2_random"],
            string.Concat(keys.Select(k => k + ":kcat\n")));
        Assert.True(exit == 0, stderr);
        var producer = Producer();
        var ours = await Task.WhenAll(keys.Select(k => producer.ProduceAsync(topic, Message.FromStrings(k, "cairn"))));

        var seen = new List<Seen>();
        for (int p = 0; p < 7; p++) seen.AddRange(await KcatReadAsync(topic, p));
        Assert.Equal(120, seen.Count);
        foreach (var (key, i) in keys.Select((k, i) => (k, i)))
        {
            var partitions = seen.Where(s => s.Key == key).Select(s => s.Partition).Distinct().ToList();
            Assert.Equal([ours[i].Partition], partitions); // kcat's record and ours share the partition
        }
        Assert.True(ours.Select(r => r.Partition).Distinct().Count() >= 5);
    }
}
