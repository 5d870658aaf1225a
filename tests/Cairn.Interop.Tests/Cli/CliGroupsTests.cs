using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
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
                var rows = plan.GetProperty("plan").EnumerateArray().ToDictionary(r => r.GetProperty("partition").GetInt32());
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
        Assert.Equal([0, 1], m.GetProperty("assignment").EnumerateArray().Single().GetProperty("partitions").EnumerateArray().Select(p => p.GetInt32()));

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
            Assert.Equal([3L, 7L], dry.GetProperty("plan").EnumerateArray().Select(r => r.GetProperty("target").GetInt64()));
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
        var offsets = g.GetProperty("partitions").EnumerateArray().ToDictionary(o => o.GetProperty("partition").GetInt32());
        var p0 = offsets[0];
        Assert.Equal(2, p0.GetProperty("committedOffset").GetInt64());
        Assert.Equal(10, p0.GetProperty("logEndOffset").GetInt64());
        Assert.Equal(8, p0.GetProperty("lag").GetInt64());
        Assert.Equal("cairn consume", p0.GetProperty("metadata").GetString());
        // Lag in time: the age of the record at the committed offset (offset 2), whose timestamp kcat reads too.
        var records = await KcatCheck.ReadPartitionAsync(fixture.Bootstrap, topic, 0, 10);
        var ts = records.Single(r => r.Offset == 2).Timestamp;
        Assert.Equal(ts, p0.GetProperty("firstUnconsumedTimestamp").GetDateTimeOffset().ToUnixTimeMilliseconds());
        var expectedAge = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - ts) / 1000.0;
        Assert.InRange(p0.GetProperty("lagSeconds").GetDouble(), expectedAge - 60, expectedAge + 1);
        Assert.True(p0.GetProperty("lagSeconds").GetDouble() > 2, $"lag seconds: {p0}");
        var p1 = offsets[1];
        Assert.Equal(0, p1.GetProperty("lag").GetInt64());
        Assert.Equal(0, p1.GetProperty("lagSeconds").GetDouble());
        Assert.Equal(8, g.GetProperty("lagRecords").GetInt64());
        var table = await Cli.OkAsync("groups", "describe", group);
        Assert.Contains("LAG-TIME", table.Stdout);
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

    /// <summary>Runs the CLI with extra environment variables (COLUMNS, TZ), against <paramref name="bootstrap"/>.</summary>
    private static Task<ProcessResult> RunWithEnvAsync(string bootstrap, IReadOnlyDictionary<string, string> env, params string[] args) =>
        ChildProcess.RunAsync(Paths.DotnetHost, [Paths.CairnDll, .. args, "--bootstrap-server", bootstrap], CairnCli.Timeout, null, env);

    /// <summary>A 2-partition topic with records, and a kcat member of <paramref name="group"/> that has read and committed them all.</summary>
    private static async Task<(string Topic, GroupMember Member)> ActiveGroupAsync(CairnCli cli, string bootstrap, string group)
    {
        var topic = Topics.Unique("cli-active");
        await cli.CreateTopicAsync(topic, 2);
        await cli.OkWithStdinAsync("a\nb\nc\n", "produce", topic, "-p", "0");
        await cli.OkWithStdinAsync("d\ne\n", "produce", topic, "-p", "1");
        var member = GroupMember.Start(GroupDriver.Kcat, "m1", bootstrap, topic, group, new GroupMemberOptions { LifetimeSeconds = 90 });
        await GroupCheck.UntilAsync([member], () => member.Records.Count >= 5, TimeSpan.FromSeconds(45), "the kcat member to read all 5 records");
        // kcat auto-commits every 500 ms.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && (await cli.CommittedAsync(group, topic)).Values.Sum() < 5) await Task.Delay(300);
        Assert.Equal(Offsets((0, 3), (1, 2)), await cli.CommittedAsync(group, topic));
        return (topic, member);
    }

    [Fact]
    public Task List_shows_state_members_and_total_lag() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = (await TopicAsync()).Name;
        var idle = UniqueGroup("cli-list-idle");
        await SeedAsync(idle, topic, (0, 4), (1, 9));
        var busy = UniqueGroup("cli-list-busy");
        var (_, member) = await ActiveGroupAsync(Cli, fixture.Bootstrap, busy);
        await using (member)
        {
            var groups = (await Cli.JsonAsync("groups", "list")).GetProperty("groups").EnumerateArray().ToDictionary(g => g.GetProperty("groupId").GetString()!);
            var i = groups[idle];
            Assert.Equal(("Empty", 0, 2, 7L), (i.GetProperty("state").GetString(), i.GetProperty("members").GetInt32(), i.GetProperty("partitions").GetInt32(), i.GetProperty("lagRecords").GetInt64()));
            var b = groups[busy];
            Assert.Equal(("Stable", 1, 2, 0L), (b.GetProperty("state").GetString(), b.GetProperty("members").GetInt32(), b.GetProperty("partitions").GetInt32(), b.GetProperty("lagRecords").GetInt64()));

            var table = (await Cli.OkAsync("groups", "list")).StdoutLines.ToList();
            Assert.Equal(["GROUP", "STATE", "MEMBERS", "PARTITIONS", "TOTAL-LAG", "PROTOCOL-TYPE"], table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
            // Offsets committed from outside a group that never had members: no protocol type.
            Assert.Equal([idle, "Empty", "0", "2", "7", "-"], table.Single(l => l.StartsWith(idle + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal([busy, "Stable", "1", "2", "0", "consumer"], table.Single(l => l.StartsWith(busy + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries));

            var stable = (await Cli.JsonAsync("groups", "list", "--state", "Stable")).GetProperty("groups").EnumerateArray().Select(g => g.GetProperty("groupId").GetString()).ToList();
            Assert.Contains(busy, stable);
            Assert.DoesNotContain(idle, stable);
            Assert.Contains(idle, (await Cli.OkAsync("groups", "list", "--output", "text")).StdoutLines);
        }
    });

    [Fact]
    public Task Describe_several_groups_or_all_with_the_consuming_member_per_partition() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var group = UniqueGroup("cli-members");
        var (topic, member) = await ActiveGroupAsync(Cli, fixture.Bootstrap, group);
        var idle = UniqueGroup("cli-members-idle");
        await SeedAsync(idle, topic, (0, 1));
        await using (member)
        {
            var described = (await Cli.JsonAsync("groups", "describe", group, idle)).GetProperty("groups").EnumerateArray().ToList();
            Assert.Equal([group, idle], described.Select(g => g.GetProperty("groupId").GetString()));
            var m = Assert.Single(described[0].GetProperty("members").EnumerateArray());
            var memberId = m.GetProperty("memberId").GetString()!;
            Assert.StartsWith("kcat-m1", m.GetProperty("clientId").GetString());
            foreach (var p in described[0].GetProperty("partitions").EnumerateArray())
            {
                Assert.Equal(memberId, p.GetProperty("memberId").GetString());
                Assert.Equal(m.GetProperty("clientId").GetString(), p.GetProperty("clientId").GetString());
                Assert.Equal(m.GetProperty("clientHost").GetString(), p.GetProperty("clientHost").GetString());
                Assert.Equal(0, p.GetProperty("logStartOffset").GetInt64());
            }
            var idlePartition = Assert.Single(described[1].GetProperty("partitions").EnumerateArray());
            Assert.Equal(JsonValueKind.Null, idlePartition.GetProperty("memberId").ValueKind);
            Assert.Equal(2, idlePartition.GetProperty("lag").GetInt64());

            // Piped and without $COLUMNS: Kafka's columns, one line per partition, the member id whole.
            var table = (await Cli.OkAsync("groups", "describe", group, "--no-lag-time")).StdoutLines.ToList();
            var header = table.Single(l => l.StartsWith("TOPIC", StringComparison.Ordinal));
            Assert.Equal(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-START-OFFSET", "LOG-END-OFFSET", "LAG", "LAG-TIME", "CONSUMER-ID", "HOST", "CLIENT-ID", "METADATA"],
                header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            var row = table.Single(l => l.StartsWith(topic + " ", StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] == "0");
            Assert.Equal([topic, "0", "3", "0", "3", "0"], row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..6]);
            Assert.Contains(memberId, row.Split(' '));

            // --all-groups describes every group, these two among them.
            var all = (await Cli.JsonAsync("groups", "describe", "--all-groups", "--no-lag-time")).GetProperty("groups").EnumerateArray()
                .Select(g => g.GetProperty("groupId").GetString()).ToList();
            Assert.Contains(group, all);
            Assert.Contains(idle, all);
            Assert.Contains($"Group {idle}:", (await Cli.OkAsync("groups", "describe", "--all-groups", "--no-lag-time")).Stdout);

            // 80 columns ($COLUMNS, as a terminal would give): no line longer, no word split.
            var env = new Dictionary<string, string> { ["COLUMNS"] = "80" };
            var narrow = (await RunWithEnvAsync(fixture.Bootstrap, env, "groups", "describe", group, idle)).EnsureSuccess();
            Assert.All(narrow.StdoutLines, l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}\n{narrow.Stdout}"));
            var words = narrow.StdoutLines.SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            Assert.Contains(memberId, words);
            Assert.Contains(topic, words);
            Assert.Contains(topic + ":0,1", words);
            Assert.Contains("LAG", words);
            var list80 = (await RunWithEnvAsync(fixture.Bootstrap, env, "groups", "list")).EnsureSuccess();
            Assert.All(list80.StdoutLines, l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}"));
            Assert.Contains(list80.StdoutLines, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() == group);
        }

        CairnCli.AssertFails(await Cli.RunAsync("groups", "describe"), 2, "--all-groups");
        CairnCli.AssertFails(await Cli.RunAsync("groups", "describe", group, "--all-groups"), 2, "not both");
        var unknown = UniqueGroup("cli-nobody");
        var r = await Cli.RunAsync("groups", "describe", idle, unknown);
        CairnCli.AssertFails(r, 1, $"group '{unknown}' does not exist");
        Assert.Single(r.Stderr.Trim().Split('\n'));
    });

    [Fact]
    public Task To_datetime_without_a_zone_is_local_time() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var shared = await TopicAsync();
        var group = UniqueGroup("cli-local-time");
        await SeedAsync(group, shared.Name, (0, 0), (1, 0));
        var tokyoWallClock = shared.Middle.ToOffset(TimeSpan.FromHours(9)).ToString("yyyy-MM-ddTHH:mm:ss.fff", CultureInfo.InvariantCulture);
        async Task<JsonElement> PlanAsync(string tz, string datetime) => CairnCli.ParseJson((await RunWithEnvAsync(fixture.Bootstrap,
            new Dictionary<string, string> { ["TZ"] = tz }, "groups", "reset-offsets", group, "--topic", shared.Name, "--to-datetime", datetime, "--output", "json")).EnsureSuccess());
        long[] Targets(JsonElement plan) => plan.GetProperty("plan").EnumerateArray().Select(r => r.GetProperty("target").GetInt64()).ToArray();

        // In Tokyo, Tokyo's wall-clock time is the middle of the topic.
        var tokyo = await PlanAsync("Asia/Tokyo", tokyoWallClock);
        Assert.Equal(new long[] { 5, 5 }, Targets(tokyo));
        Assert.Equal("to-datetime " + shared.Middle.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fff", CultureInfo.InvariantCulture) + "Z", tokyo.GetProperty("spec").GetString());
        // The same text in New York is 13 or 14 hours later: after every record.
        Assert.Equal(new long[] { 10, 10 }, Targets(await PlanAsync("America/New_York", tokyoWallClock)));
        // A zone in the text wins over TZ.
        Assert.Equal(new long[] { 5, 5 }, Targets(await PlanAsync("America/New_York", tokyoWallClock + "+09:00")));
        Assert.Equal(new long[] { 5, 5 }, Targets(await PlanAsync("America/New_York", shared.Middle.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fff", CultureInfo.InvariantCulture) + "Z")));
        Assert.Equal(Offsets((0, 0), (1, 0)), await Cli.CommittedAsync(group, shared.Name));
    });

    [Fact]
    public Task The_readme_group_example_shows_committed_offsets_and_lag_on_first_run() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var topic = Topics.Unique("cli-orders");
        var group = UniqueGroup("cli-billing");
        await Cli.CreateTopicAsync(topic, 1);
        await Cli.OkWithStdinAsync("one\ntwo\nthree\n", "produce", topic);
        Assert.Equal(["one", "two", "three"], (await Cli.OkAsync("consume", topic, "--group", group, "-o", "earliest", "-e")).StdoutLines);
        await Cli.OkWithStdinAsync("four\nfive\n", "produce", topic);
        var lines = (await Cli.OkAsync("groups", "describe", group)).StdoutLines.ToList();
        Assert.Contains($"Group {group}: state Empty", lines[0]);
        Assert.EndsWith("total lag 2", lines[0]);
        Assert.Equal([topic, "0", "3", "0", "5", "2"], lines.Single(l => l.StartsWith(topic + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[..6]);
    });

    [Fact]
    public async Task The_cli_and_the_admin_api_give_a_group_and_a_reset_plan_in_one_shape()
    {
        int adminPort = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions
        {
            AutoCreateTopics = false,
            Settings = new Dictionary<string, string> { ["group.initial.rebalance.delay.ms"] = "0", ["admin.listen"] = $"127.0.0.1:{adminPort}" },
        });
        await broker.WithBrokerLogAsync(async () =>
        {
            using var http = await JsonShape.AdminClientAsync(adminPort);
            var cli = new CairnCli(broker.Bootstrap);
            var group = UniqueGroup("cli-shape");
            var (topic, member) = await ActiveGroupAsync(cli, broker.Bootstrap, group);
            string Partitions(JsonElement g) => string.Join(";", g.GetProperty("partitions").EnumerateArray().Select(p =>
                string.Join(",", new[] { "topic", "partition", "committedOffset", "logStartOffset", "logEndOffset", "lag", "memberId", "clientId", "clientHost" }
                    .Select(n => p.GetProperty(n).ToString()))));
            async Task CompareGroupAsync(string when)
            {
                var fromCli = (await cli.JsonAsync("groups", "describe", group)).GetProperty("groups")[0];
                var fromApi = await http.GetFromJsonAsync<JsonElement>($"api/v1/groups/{Uri.EscapeDataString(group)}");
                Assert.NotEmpty(fromApi.GetProperty("partitions").EnumerateArray());
                JsonShape.AssertSame(fromCli, fromApi, $"GET /api/v1/groups/{{g}} and groups describe --output json ({when})");
                // The values that do not move agree too.
                foreach (var name in new[] { "groupId", "state", "protocolType", "protocol", "coordinator", "lagRecords", "members" })
                    Assert.Equal(JsonSerializer.Serialize(fromApi.GetProperty(name)), JsonSerializer.Serialize(fromCli.GetProperty(name)));
                Assert.Equal(Partitions(fromApi), Partitions(fromCli));

                // The group summary of groups list and GET /api/v1/groups.
                var listedCli = (await cli.JsonAsync("groups", "list")).GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("groupId").GetString() == group);
                var listedApi = (await http.GetFromJsonAsync<JsonElement>("api/v1/groups")).GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("groupId").GetString() == group);
                JsonShape.AssertSame(listedCli, listedApi, $"GET /api/v1/groups and groups list --output json ({when})");
                foreach (var name in new[] { "groupId", "state", "protocolType", "members", "partitions", "lagRecords" })
                    Assert.Equal(JsonSerializer.Serialize(listedApi.GetProperty(name)), JsonSerializer.Serialize(listedCli.GetProperty(name)));
            }

            // With the member (it has read everything: nothing moves), then without it and 2 records behind.
            await using (member)
            {
                Assert.NotEmpty((await cli.JsonAsync("groups", "describe", group)).GetProperty("groups")[0].GetProperty("members").EnumerateArray());
                await CompareGroupAsync("an active member");
                await member.StopAsync();
            }
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while ((await cli.JsonAsync("groups", "describe", group, "--no-lag-time")).GetProperty("groups")[0].GetProperty("members").GetArrayLength() > 0 && DateTime.UtcNow < deadline)
                await Task.Delay(300);
            await cli.OkWithStdinAsync("f\ng\n", "produce", topic, "-p", "0");
            await CompareGroupAsync("no member, 2 records behind");

            // A reset plan (a dry run).
            var planCli = await cli.JsonAsync("groups", "reset-offsets", group, "--topic", topic, "--to-earliest");
            var response = await http.PostAsJsonAsync($"api/v1/groups/{Uri.EscapeDataString(group)}/reset", new { toEarliest = true, topic });
            var planApi = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(response.IsSuccessStatusCode, planApi.ToString());
            Assert.Equal(2, planCli.GetProperty("plan").GetArrayLength());
            JsonShape.AssertSame(planCli, planApi, "POST /api/v1/groups/{g}/reset and groups reset-offsets --output json");
            foreach (var name in new[] { "groupId", "mode", "spec", "scope", "dryRun", "executed", "groupState", "activeMembers", "plan", "errors", "table" })
                Assert.Equal(JsonSerializer.Serialize(planApi.GetProperty(name)), JsonSerializer.Serialize(planCli.GetProperty(name)));
        });
    }
}
