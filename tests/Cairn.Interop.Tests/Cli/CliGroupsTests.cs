using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// `cairn groups ...` and `cairn offsets ...`: every reset mode as a dry run (nothing changes) and executed (kcat -G
/// then starts exactly at the new offsets), clamping, refusal while a kcat member is active, export/import round trips
/// and copies, list/describe/delete/delete-offsets.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliGroupsTests(CliBrokerFixture fixture)
{
    private CairnCli Cli => new(fixture.Bootstrap);

    /// <summary>
    /// A topic with 2 partitions of 10 records each: offsets 0-4 produced before <see cref="Middle"/> - 0.5 s, offsets 5-9
    /// after <see cref="Middle"/> + 3.5 s (so a by-duration reset still lands on offset 5 when the CLI takes up to 3.5 s to
    /// read the clock after the test computed the duration).
    /// </summary>
    private sealed record ResetTopic(string Name, DateTimeOffset Middle);

    private static readonly ConcurrentDictionary<string, Lazy<Task<ResetTopic>>> SharedTopics = new();

    private Task<ResetTopic> TopicAsync() => SharedTopics.GetOrAdd(fixture.Bootstrap, b => new Lazy<Task<ResetTopic>>(() => CreateResetTopicAsync(b))).Value;

    private static async Task<ResetTopic> CreateResetTopicAsync(string bootstrap)
    {
        var topic = Topics.Unique("cli-reset");
        await new CairnCli(bootstrap).CreateTopicAsync(topic, 2);
        for (int p = 0; p < 2; p++) await KcatCheck.ProduceAsync(bootstrap, topic, p, Enumerable.Range(0, 5).Select(i => $"early-{p}-{i}"));
        var roundOneDone = DateTimeOffset.UtcNow;
        await Task.Delay(4000);
        for (int p = 0; p < 2; p++) await KcatCheck.ProduceAsync(bootstrap, topic, p, Enumerable.Range(5, 5).Select(i => $"late-{p}-{i}"));
        return new ResetTopic(topic, roundOneDone.AddMilliseconds(500));
    }

    private static string UniqueGroup(string prefix) => Topics.Unique(prefix);

    private static string Csv(string topic, params (int Partition, long Offset)[] rows) =>
        string.Concat(rows.Select(r => $"{topic},{r.Partition},{r.Offset}\n"));

    private static string TempFile(string content, string extension = ".csv")
    {
        var path = Path.Combine(Path.GetTempPath(), "cairn-cli-" + Guid.NewGuid().ToString("N")[..12] + extension);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Sets a group's offsets (through the CLI's import; the tests check the result with kcat).</summary>
    private async Task SeedAsync(string group, string topic, params (int Partition, long Offset)[] offsets)
    {
        var file = TempFile(Csv(topic, offsets));
        try { await Cli.OkAsync("offsets", "import", group, file, "--execute"); }
        finally { File.Delete(file); }
    }

    private static Dictionary<int, long> Offsets(params (int Partition, long Offset)[] o) => o.ToDictionary(x => x.Partition, x => x.Offset);

    /// <summary>kcat -G starts exactly at <paramref name="expected"/> on each partition and reads to the end (10).</summary>
    private async Task AssertKcatStartsAtAsync(string group, string topic, Dictionary<int, long> expected, string what)
    {
        var read = await KcatCheck.GroupReadAsync(fixture.Bootstrap, group, topic);
        foreach (var (p, start) in expected)
        {
            var want = Enumerable.Range((int)start, Math.Max(0, 10 - (int)start)).Select(i => (long)i).ToList();
            var got = read.GetValueOrDefault(p) ?? [];
            Assert.True(want.SequenceEqual(got), $"{what}: kcat -G on partition {p} read [{string.Join(",", got)}], expected [{string.Join(",", want)}]");
        }
    }

    public static IEnumerable<object[]> ResetModes() =>
    [
        ["to-earliest"], ["to-earliest-one-partition"], ["to-latest"], ["to-offset"], ["to-offset-beyond-end"], ["to-datetime"], ["by-duration"],
        ["shift-by"], ["shift-by-below-start"], ["shift-by-beyond-end"], ["to-current"], ["from-file"],
    ];

    [Theory]
    [MemberData(nameof(ResetModes))]
    public Task Reset_mode_dry_run_changes_nothing_and_execute_moves_kcat(string mode) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var shared = await TopicAsync();
        var topic = shared.Name;
        var group = UniqueGroup("cli-reset-" + mode);
        var seed = Offsets((0, 6), (1, 4));
        await SeedAsync(group, topic, (0, 6), (1, 4));

        string? file = null;
        string scope = topic;
        // Per mode: the arguments (built at run time: by-duration counts back from now), the targets and which are clamped.
        Func<string[]> args;
        Dictionary<int, long> expected;
        var clamped = new HashSet<int>();
        switch (mode)
        {
            case "to-earliest": args = () => ["--to-earliest"]; expected = Offsets((0, 0), (1, 0)); break;
            case "to-earliest-one-partition": scope = topic + ":1"; args = () => ["--to-earliest"]; expected = Offsets((1, 0)); break;
            case "to-latest": args = () => ["--to-latest"]; expected = Offsets((0, 10), (1, 10)); break;
            case "to-offset": args = () => ["--to-offset", "7"]; expected = Offsets((0, 7), (1, 7)); break;
            case "to-offset-beyond-end": args = () => ["--to-offset", "1000"]; expected = Offsets((0, 10), (1, 10)); clamped = [0, 1]; break;
            case "to-datetime":
                args = () => ["--to-datetime", shared.Middle.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)];
                expected = Offsets((0, 5), (1, 5));
                break;
            case "by-duration":
                args = () => ["--by-duration", "PT" + (DateTimeOffset.UtcNow - shared.Middle).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + "S"];
                expected = Offsets((0, 5), (1, 5));
                break;
            case "shift-by": args = () => ["--shift-by", "-2"]; expected = Offsets((0, 4), (1, 2)); break;
            case "shift-by-below-start": args = () => ["--shift-by", "-1000"]; expected = Offsets((0, 0), (1, 0)); clamped = [0, 1]; break;
            case "shift-by-beyond-end": args = () => ["--shift-by", "+5"]; expected = Offsets((0, 10), (1, 9)); clamped = [0]; break;
            case "to-current": args = () => ["--to-current"]; expected = Offsets((0, 6), (1, 4)); break;
            case "from-file":
                file = TempFile($"# a plan\n{topic},0,3\n{topic},1,99\n");
                args = () => ["--from-file", file];
                expected = Offsets((0, 3), (1, 10));
                clamped = [1];
                break;
            default: throw new ArgumentOutOfRangeException(nameof(mode), mode, null);
        }

        try
        {
            string[] Command(bool execute) => ["groups", "reset-offsets", group, "--topic", scope, .. args(), .. execute ? new[] { "--execute" } : []];
            void AssertPlan(JsonElement plan, bool executed)
            {
                Assert.Equal(!executed, plan.GetProperty("dryRun").GetBoolean());
                Assert.Equal(executed, plan.GetProperty("executed").GetBoolean());
                Assert.Empty(plan.GetProperty("errors").EnumerateArray());
                var rows = plan.GetProperty("partitions").EnumerateArray().ToDictionary(r => r.GetProperty("partition").GetInt32());
                Assert.Equal(expected.Keys.Order(), rows.Keys.Order());
                foreach (var (p, target) in expected)
                {
                    var row = rows[p];
                    Assert.True(row.GetProperty("current").GetInt64() == seed[p] && row.GetProperty("target").GetInt64() == target
                        && row.GetProperty("clamped").GetBoolean() == clamped.Contains(p), $"{mode}: partition {p}: {row} (expected target {target})\n{plan}");
                    if (clamped.Contains(p)) Assert.Contains("clamped", row.GetProperty("note").GetString());
                }
            }

            // Dry run: the plan, and nothing changes.
            AssertPlan(await Cli.JsonAsync(Command(execute: false)), executed: false);
            Assert.Equal(seed, await Cli.CommittedAsync(group, topic));
            if (clamped.Count > 0)
            {
                var table = await Cli.OkAsync(Command(execute: false));
                Assert.Contains("clamped", table.Stdout);
                Assert.Contains("Dry run", table.Stdout);
            }

            // Execute: the group's offsets are the targets, and kcat -G starts exactly there.
            AssertPlan(await Cli.JsonAsync(Command(execute: true)), executed: true);
            var after = new Dictionary<int, long>(seed);
            foreach (var (p, o) in expected) after[p] = o;
            Assert.Equal(after, await Cli.CommittedAsync(group, topic));
            await AssertKcatStartsAtAsync(group, topic, after, mode);
        }
        finally
        {
            if (file is not null) File.Delete(file);
        }
    });

    [Fact]
    public Task Reset_is_refused_while_a_kcat_member_is_active() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-active");
        var group = UniqueGroup("cli-active");
        await Cli.CreateTopicAsync(topic, 2);
        await Cli.OkWithStdinAsync("a\nb\nc\n", "produce", topic, "-p", "0");
        await Cli.OkWithStdinAsync("d\ne\n", "produce", topic, "-p", "1");

        await using var member = GroupMember.Start(GroupDriver.Kcat, "m1", fixture.Bootstrap, topic, group, new GroupMemberOptions { LifetimeSeconds = 90 });
        await GroupCheck.UntilAsync([member], () => member.Records.Count >= 5, TimeSpan.FromSeconds(45), "the kcat member to read all 5 records");
        // kcat auto-commits every 500 ms.
        var ends = Offsets((0, 3), (1, 2));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!ends.SequenceEqual((await Cli.CommittedAsync(group, topic)).OrderBy(kv => kv.Key)) && DateTime.UtcNow < deadline) await Task.Delay(300);
        Assert.Equal(ends, await Cli.CommittedAsync(group, topic));

        var described = (await Cli.JsonAsync("groups", "describe", group)).GetProperty("groups")[0];
        Assert.Equal("Stable", described.GetProperty("state").GetString());
        var m = Assert.Single(described.GetProperty("members").EnumerateArray());
        Assert.Equal("kcat-m1", m.GetProperty("clientId").GetString());
        Assert.Equal(2, m.GetProperty("assignment").GetArrayLength());

        var refused = await Cli.RunAsync("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute");
        CairnCli.AssertFails(refused, 1, "active member");
        Assert.Contains("stop its consumers", refused.Stderr);
        CairnCli.AssertFails(await Cli.RunAsync("groups", "reset-offsets", group, "--all-topics", "--shift-by", "-1", "--execute"), 1, "active member");
        var plan = TempFile(Csv(topic, (0, 0), (1, 0)));
        try { CairnCli.AssertFails(await Cli.RunAsync("offsets", "import", group, plan, "--execute"), 1, "active member"); }
        finally { File.Delete(plan); }
        CairnCli.AssertFails(await Cli.RunAsync("consume", topic, "--group", group, "-e"), 1, "active member");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "delete", group), 1, "active members");
        Assert.Equal(ends, await Cli.CommittedAsync(group, topic));

        // A dry run still shows the plan, with the group's state.
        var dry = await Cli.JsonAsync("groups", "reset-offsets", group, "--topic", topic, "--to-earliest");
        Assert.Equal(1, dry.GetProperty("activeMembers").GetInt32());
        Assert.False(dry.GetProperty("executed").GetBoolean());
        Assert.Equal(ends, await Cli.CommittedAsync(group, topic));

        // Once the member has left, the same reset goes through.
        await member.StopAsync();
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((await Cli.JsonAsync("groups", "describe", group, "--no-lag-time")).GetProperty("groups")[0].GetProperty("members").GetArrayLength() > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(300);
        await Cli.OkAsync("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute");
        Assert.Equal(Offsets((0, 0), (1, 0)), await Cli.CommittedAsync(group, topic));
        var read = await KcatCheck.GroupReadAsync(fixture.Bootstrap, group, topic);
        Assert.Equal([0L, 1, 2], read[0]);
        Assert.Equal([0L, 1], read[1]);
    });

    [Fact]
    public Task Export_import_round_trip_and_copy_to_other_groups() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = (await TopicAsync()).Name;
        var group = UniqueGroup("cli-export");
        await Cli.OkAsync("groups", "reset-offsets", group, "--topic", topic + ":0", "--to-offset", "3", "--execute");
        await Cli.OkAsync("groups", "reset-offsets", group, "--topic", topic + ":1", "--to-offset", "7", "--execute");

        var exported = await Cli.OkAsync("offsets", "export", group);
        Assert.Equal(Csv(topic, (0, 3), (1, 7)), exported.Stdout);
        var file = TempFile("");
        var jsonFile = TempFile("", ".json");
        try
        {
            await Cli.OkAsync("offsets", "export", group, "--file", file);
            Assert.Equal(exported.Stdout, await File.ReadAllTextAsync(file));

            // Move the group away, then bring it back from the file: a dry run first (nothing changes), then --execute.
            await Cli.OkAsync("groups", "reset-offsets", group, "--all-topics", "--to-earliest", "--execute");
            Assert.Equal(Offsets((0, 0), (1, 0)), await Cli.CommittedAsync(group, topic));
            var dry = await Cli.JsonAsync("offsets", "import", group, file);
            Assert.True(dry.GetProperty("dryRun").GetBoolean());
            Assert.Equal([3L, 7L], dry.GetProperty("partitions").EnumerateArray().Select(r => r.GetProperty("target").GetInt64()));
            Assert.Equal(Offsets((0, 0), (1, 0)), await Cli.CommittedAsync(group, topic));
            await Cli.OkAsync("offsets", "import", group, file, "--execute");
            Assert.Equal(Offsets((0, 3), (1, 7)), await Cli.CommittedAsync(group, topic));

            // The same file copies the offsets to another group: kcat -G of that group starts there.
            var copy = UniqueGroup("cli-copy");
            await Cli.OkAsync("offsets", "import", copy, file, "--execute");
            await AssertKcatStartsAtAsync(copy, topic, Offsets((0, 3), (1, 7)), "copied group");

            // Straight from group to group, and through the JSON export.
            var direct = UniqueGroup("cli-direct");
            await Cli.OkAsync("offsets", "import", direct, "--from-group", group, "--execute");
            Assert.Equal(Offsets((0, 3), (1, 7)), await Cli.CommittedAsync(direct, topic));
            var json = await Cli.JsonAsync("offsets", "export", group);
            Assert.Equal(2, json.GetProperty("offsets").GetArrayLength());
            await File.WriteAllTextAsync(jsonFile, json.ToString());
            var viaJson = UniqueGroup("cli-json");
            await Cli.OkAsync("offsets", "import", viaJson, jsonFile, "--execute");
            Assert.Equal(Offsets((0, 3), (1, 7)), await Cli.CommittedAsync(viaJson, topic));

            // Only one partition of the file.
            var partial = UniqueGroup("cli-partial");
            await Cli.OkAsync("offsets", "import", partial, file, "--topic", topic + ":1", "--execute");
            Assert.Equal(Offsets((1, 7)), await Cli.CommittedAsync(partial, topic));
        }
        finally
        {
            File.Delete(file);
            File.Delete(jsonFile);
        }
        CairnCli.AssertFails(await Cli.RunAsync("offsets", "export", UniqueGroup("cli-nothing")), 1, "no committed offsets");
        CairnCli.AssertFails(await Cli.RunAsync("offsets", "import", group, "/nonexistent/plan.csv"), 2, "does not exist");
        var bad = TempFile("not,a,plan,at all\n");
        try { CairnCli.AssertFails(await Cli.RunAsync("offsets", "import", group, bad), 2, "topic,partition,offset"); }
        finally { File.Delete(bad); }
    });

    [Fact]
    public Task List_describe_with_lag_delete_offsets_and_delete() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = (await TopicAsync()).Name;
        var group = UniqueGroup("cli-describe");
        // Partition 0: two records read by cairn consume --group (commit metadata "cairn consume"); partition 1: at the end.
        Assert.Equal(["early-0-0", "early-0-1"], (await Cli.OkAsync("consume", topic, "--group", group, "-p", "0", "-c", "2")).StdoutLines);
        await SeedAsync(group, topic, (1, 10));

        var listed = await Cli.JsonAsync("groups", "list");
        var entry = listed.GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("groupId").GetString() == group);
        Assert.Equal("Empty", entry.GetProperty("state").GetString());

        var g = (await Cli.JsonAsync("groups", "describe", group)).GetProperty("groups")[0];
        Assert.Equal("Empty", g.GetProperty("state").GetString());
        Assert.Empty(g.GetProperty("members").EnumerateArray());
        var offsets = g.GetProperty("offsets").EnumerateArray().ToDictionary(o => o.GetProperty("partition").GetInt32());
        var p0 = offsets[0];
        Assert.Equal(2, p0.GetProperty("committedOffset").GetInt64());
        Assert.Equal(10, p0.GetProperty("logEndOffset").GetInt64());
        Assert.Equal(8, p0.GetProperty("lag").GetInt64());
        Assert.Equal("cairn consume", p0.GetProperty("metadata").GetString());
        // Lag in time: the age of the record at the committed offset (offset 2), whose timestamp kcat reads too.
        var records = await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 0, 10);
        var ts = records.Single(r => r.Offset == 2).Timestamp;
        Assert.Equal(ts, p0.GetProperty("committedRecordTimestamp").GetInt64());
        var expectedAge = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - ts) / 1000.0;
        Assert.InRange(p0.GetProperty("lagSeconds").GetDouble(), expectedAge - 60, expectedAge + 1);
        Assert.True(p0.GetProperty("lagSeconds").GetDouble() > 2, $"lag seconds: {p0}");
        var p1 = offsets[1];
        Assert.Equal(0, p1.GetProperty("lag").GetInt64());
        Assert.Equal(0, p1.GetProperty("lagSeconds").GetDouble());
        Assert.Equal(8, g.GetProperty("totalLag").GetInt64());
        var table = await Cli.OkAsync("groups", "describe", group);
        Assert.Contains("LAG TIME", table.Stdout);
        Assert.Contains("cairn consume", table.Stdout);

        var deleted = await Cli.JsonAsync("groups", "delete-offsets", group, "--topic", topic + ":1");
        Assert.Equal([1], deleted.GetProperty("deleted").EnumerateArray().Select(d => d.GetProperty("partition").GetInt32()));
        Assert.Equal(Offsets((0, 2)), await Cli.CommittedAsync(group, topic));
        CairnCli.AssertFails(await Cli.RunAsync("groups", "delete-offsets", group, "--topic", "no-such-topic"), 1, "no committed offsets");

        await Cli.OkAsync("groups", "delete", group);
        listed = await Cli.JsonAsync("groups", "list");
        Assert.DoesNotContain(group, listed.GetProperty("groups").EnumerateArray().Select(x => x.GetProperty("groupId").GetString()));
        CairnCli.AssertFails(await Cli.RunAsync("groups", "describe", group), 1, "does not exist");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "delete", group), 1, "does not exist");
    });
}
