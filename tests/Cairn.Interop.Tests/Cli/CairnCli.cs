using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// One broker for all CLI tests: no auto-created topics (the tests create what they use with `cairn topics create`),
/// no initial rebalance delay (kcat -G members join at once) and the admin HTTP server on a free port.
/// </summary>
public sealed class CliBrokerFixture : BrokerFixture
{
    protected override BrokerOptions Options => new()
    {
        DefaultPartitions = 1,
        AutoCreateTopics = false,
        Settings = new Dictionary<string, string>
        {
            ["group.initial.rebalance.delay.ms"] = "0",
            ["admin.listen"] = "127.0.0.1:0",
        },
    };
}

[CollectionDefinition(Name)]
public sealed class CliCollection : ICollectionFixture<CliBrokerFixture>
{
    public const string Name = "cairn CLI";
}

/// <summary>Runs the built `cairn` executable (dotnet cairn.dll ...) against a broker, with bounded waits.</summary>
public sealed class CairnCli(string bootstrap)
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public string Bootstrap { get; } = bootstrap;

    /// <summary>Runs `cairn ARGS --bootstrap-server B` (no bootstrap when <paramref name="withBootstrap"/> is false).</summary>
    public Task<ProcessResult> RunAsync(IEnumerable<string> args, string? stdin = null, bool withBootstrap = true, TimeSpan? timeout = null)
    {
        var all = new List<string> { Paths.CairnDll };
        all.AddRange(args);
        if (withBootstrap) all.AddRange(["--bootstrap-server", Bootstrap]);
        return ChildProcess.RunAsync(Paths.DotnetHost, all, timeout ?? Timeout, stdin is null ? null : Encoding.UTF8.GetBytes(stdin));
    }

    public Task<ProcessResult> RunAsync(params string[] args) => RunAsync(args, null);

    /// <summary>Runs and requires exit code 0.</summary>
    public async Task<ProcessResult> OkAsync(params string[] args) => (await RunAsync(args, null)).EnsureSuccess();

    public async Task<ProcessResult> OkWithStdinAsync(string stdin, params string[] args) => (await RunAsync(args, stdin)).EnsureSuccess();

    /// <summary>Runs with --output json, requires exit code 0 and parses stdout as one JSON document.</summary>
    public async Task<JsonElement> JsonAsync(params string[] args)
    {
        var r = (await RunAsync([.. args, "--output", "json"], null)).EnsureSuccess();
        return ParseJson(r);
    }

    public static JsonElement ParseJson(ProcessResult r)
    {
        try
        {
            return JsonDocument.Parse(r.Stdout).RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InteropFailureException($"stdout is not one JSON document ({e.Message}). {r.Describe()}");
        }
    }

    /// <summary>Requires a failure with the given exit code and a message on stderr containing <paramref name="expected"/>.</summary>
    public static void AssertFails(ProcessResult r, int exitCode, string expected)
    {
        Assert.True(r.ExitCode == exitCode, $"expected exit code {exitCode}. {r.Describe()}");
        Assert.True(r.Stderr.Contains(expected, StringComparison.OrdinalIgnoreCase), $"stderr lacks '{expected}'. {r.Describe()}");
    }

    /// <summary>The group's committed offsets per partition of <paramref name="topic"/>, from `cairn groups describe --output json`.</summary>
    public async Task<Dictionary<int, long>> CommittedAsync(string group, string topic)
    {
        var doc = await JsonAsync("groups", "describe", group, "--no-lag-time");
        var g = doc.GetProperty("groups")[0];
        return g.GetProperty("partitions").EnumerateArray()
            .Where(o => o.GetProperty("topic").GetString() == topic && o.GetProperty("committedOffset").ValueKind == JsonValueKind.Number)
            .ToDictionary(o => o.GetProperty("partition").GetInt32(), o => o.GetProperty("committedOffset").GetInt64());
    }

    public async Task CreateTopicAsync(string topic, int partitions) =>
        await OkAsync("topics", "create", topic, "--partitions", partitions.ToString(CultureInfo.InvariantCulture));
}

/// <summary>kcat helpers for checking what the CLI did, independently of it.</summary>
public static class KcatCheck
{
    /// <summary>
    /// Consumes the topic as a member of <paramref name="group"/> (kcat -G, balanced consumer) until the end of every
    /// partition and returns the offsets read per partition. The member starts at the group's committed offsets
    /// (earliest where there are none) and commits what it read when it exits.
    /// </summary>
    public static async Task<Dictionary<int, List<long>>> GroupReadAsync(string bootstrap, string group, string topic)
    {
        var r = await ChildProcess.RunAsync(KcatClient.Exe,
        [
            "-G", group, "-b", bootstrap, "-e", "-f", "%p %o\\n", "-m", "15",
            "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "fetch.wait.max.ms=50",
            topic,
        ], TimeSpan.FromSeconds(60));
        if (r.ExitCode != 0) throw new InteropFailureException($"kcat -G {group} failed. {r.Describe()}");
        var read = new Dictionary<int, List<long>>();
        foreach (var line in r.StdoutLines)
        {
            var f = line.Split(' ');
            var p = int.Parse(f[0], CultureInfo.InvariantCulture);
            if (!read.TryGetValue(p, out var list)) read[p] = list = [];
            list.Add(long.Parse(f[1], CultureInfo.InvariantCulture));
        }
        return read;
    }

    /// <summary>Produces text lines to one partition with kcat (CreateTime = now).</summary>
    public static Task ProduceAsync(string bootstrap, string topic, int partition, IEnumerable<string> values) =>
        KafkaClients.Kcat.ProduceAsync(bootstrap, topic, values.Select(v => new OutRecord { Partition = partition, Value = Encoding.UTF8.GetBytes(v) }).ToList());

    /// <summary>Records of one partition read with kcat: (offset, key, value, headers as kcat prints them, timestamp).</summary>
    public static async Task<List<KRecord>> ReadPartitionAsync(string bootstrap, string topic, int partition, int count)
    {
        await using var running = await KafkaClients.Kcat.StartConsumeAsync(bootstrap, topic, count, StartAt.Earliest, [partition], TimeSpan.FromSeconds(30));
        return (await running.FinishAsync()).Records.ToList();
    }
}
