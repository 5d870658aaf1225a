using System.Globalization;
using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Cairn.Interop.Tests;

/// <summary>
/// Consumer groups (classic protocol) through real clients: kcat -G, confluent-kafka (manual commits,
/// cooperative-sticky, static membership), kafka-python (auto-commit, commit metadata, group admin)
/// and kafkajs (eachBatch, fetch/set/reset offsets, deleteGroups). In every scenario: no record is
/// consumed twice after a clean handover, none is skipped, and after a broker restart the group
/// resumes exactly at its committed offsets. Every test starts its own broker (most restart it)
/// with group.initial.rebalance.delay.ms=0.
/// </summary>
public sealed class GroupTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(45);

    private static Task<BrokerProcess> StartBrokerAsync() => BrokerProcess.StartAsync(new BrokerOptions
    {
        DefaultPartitions = 1,
        AutoCreateTopics = true,
        Settings = new Dictionary<string, string> { ["group.initial.rebalance.delay.ms"] = "0" },
    });

    private static async Task<string> CreateTopicAsync(string bootstrap, string prefix, int partitions)
    {
        var topic = Topics.Unique(prefix);
        await KafkaClients.Confluent.CommandAsync("create-topic", bootstrap, "--topic", topic, "--partitions",
            partitions.ToString(CultureInfo.InvariantCulture));
        return topic;
    }

    private static string UniqueGroup(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    /// <summary>Group members started by a test; all are killed at the end whatever happened.</summary>
    private sealed class MemberSet(string bootstrap, string topic, string group) : IAsyncDisposable
    {
        public List<GroupMember> All { get; } = new();

        public GroupMember Start(GroupDriver driver, string name, GroupMemberOptions? options = null)
        {
            var m = GroupMember.Start(driver, name, bootstrap, topic, group, options);
            All.Add(m);
            return m;
        }

        public IEnumerable<GroupMember> Live => All.Where(m => !m.StopRequested);

        public ITestOutputHelper? Output { get; init; }

        public async ValueTask DisposeAsync()
        {
            foreach (var m in All)
            {
                try { Output?.WriteLine(m.Summary()); }
                catch (InvalidOperationException) { }
            }
            foreach (var m in All) await m.DisposeAsync();
        }
    }

    // ------------------------------------------------------------------ offsets as the clients see them

    private sealed record CkOffset(long Committed, string? Error, long Low, long High);

    /// <summary>confluent-kafka committed() and get_watermark_offsets() for every partition.</summary>
    private static async Task<Dictionary<int, CkOffset>> CkCommittedAsync(string b, string topic, string group)
    {
        var r = await KafkaClients.Confluent.CommandAsync("committed", b, "--topic", topic, "--group", group);
        return r.GetProperty("partitions").EnumerateArray().ToDictionary(
            p => p.GetProperty("partition").GetInt32(),
            p => new CkOffset(p.GetProperty("offset").GetInt64(),
                p.GetProperty("error").ValueKind == JsonValueKind.Null ? null : p.GetProperty("error").GetString(),
                p.GetProperty("low").GetInt64(), p.GetProperty("high").GetInt64()));
    }

    /// <summary>kafka-python KafkaAdminClient.list_consumer_group_offsets: (partition → offset, metadata) of one topic.</summary>
    private static async Task<Dictionary<int, (long Offset, string? Metadata)>> KpGroupOffsetsAsync(string b, string group, string topic)
    {
        var r = await KafkaClients.KafkaPython.CommandAsync("group-offsets", b, "--group", group);
        return r.GetProperty("offsets").EnumerateArray()
            .Where(o => o.GetProperty("topic").GetString() == topic)
            .ToDictionary(o => o.GetProperty("partition").GetInt32(),
                o => (o.GetProperty("offset").GetInt64(), o.GetProperty("metadata").GetString()));
    }

    /// <summary>kafkajs admin.fetchOffsets({groupId, topics}).</summary>
    private static async Task<Dictionary<int, long>> KjsFetchOffsetsAsync(string b, string group, string topic)
    {
        var r = await KafkaClients.Kafkajs.CommandAsync("fetch-offsets", b, "--group", group, "--topic", topic);
        return r.GetProperty("partitions").EnumerateArray().ToDictionary(p => p.GetProperty("partition").GetInt32(), p => p.GetProperty("offset").GetInt64());
    }

    /// <summary>Polls (bounded) until the fetched committed offsets equal the wanted ones.</summary>
    private static async Task<Dictionary<int, long>> WaitForCommittedAsync(Func<Task<Dictionary<int, long>>> fetch,
        IReadOnlyDictionary<int, long> want, string what, IEnumerable<GroupMember>? members = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        Dictionary<int, long> last;
        while (true)
        {
            last = await fetch();
            if (want.All(kv => last.TryGetValue(kv.Key, out var o) && o == kv.Value)) return last;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{what}: committed offsets {GroupData.Show(last)}, expected {GroupData.Show(want)} (waited 30s)\n" +
                                           (members is null ? "" : GroupCheck.DescribeAll(members)));
            await Task.Delay(300);
        }
    }

    /// <summary>The member's latest assignment event is an "assigned" after its first <paramref name="index"/> events.</summary>
    private static bool AssignedSince(GroupMember m, int index)
    {
        var events = m.Assignments;
        return events.Count > index && events[^1].Kind == "assigned";
    }

    private static void AssertBrokerSaw(BrokerProcess broker, string group, string text)
    {
        var log = broker.RecentOutput(400);
        Assert.True(log.Split('\n').Any(l => l.Contains($"group {group}:", StringComparison.Ordinal) && l.Contains(text, StringComparison.Ordinal)),
            $"the broker log has no line 'group {group}: …{text}…'");
    }

    // ------------------------------------------------------------------ 1. kcat -G

    [Fact]
    public async Task Kcat_balanced_consumers_share_hand_over_and_resume_after_restart()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 4;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-kcat", partitions);
            var group = UniqueGroup("kcat");
            await using var members = new MemberSet(b, topic, group) { Output = output };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 120, partitions);
            var a = members.Start(GroupDriver.Kcat, "A");
            var bb = members.Start(GroupDriver.Kcat, "B");
            var c = members.Start(GroupDriver.Kcat, "C");
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true)
                && GroupCheck.AllConsumed(members.All, round1), Wait, "three kcat -G members to split 4 partitions and consume round 1");

            // Every member consumes its share of records produced now.
            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 60, partitions);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, round2), Wait, "round 2 to be consumed");
            foreach (var m in members.All)
            {
                var owned = m.Owned!;
                Assert.True(m.Records.Any(r => round2.ContainsKey((r.Partition, r.Offset))), $"{m.Name} (owning [{string.Join(',', owned)}]) consumed nothing of round 2");
                Assert.All(m.Records.Where(r => round2.ContainsKey((r.Partition, r.Offset))), r => Assert.Contains(r.Partition, owned));
            }

            // C stops cleanly (SIGTERM: commits and leaves); A and B take over its partitions.
            var (aBefore, bBefore) = (a.Assignments.Count, bb.Assignments.Count);
            await c.StopAsync();
            await GroupCheck.UntilAsync(members.All, () => AssignedSince(a, aBefore) && AssignedSince(bb, bBefore) && GroupCheck.Balanced(members.Live, partitions),
                Wait, "A and B to be reassigned all 4 partitions after C left");
            AssertBrokerSaw(broker, group, "left");

            var round3 = await GroupData.ProduceAsync(b, topic, "r3", 80, partitions);
            var all = GroupData.Merge(round1, round2, round3);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, all), Wait, "round 3 to be consumed after the handover");
            var ends = GroupData.Ends(all.Keys, partitions);
            await WaitForCommittedAsync(async () => (await CkCommittedAsync(b, topic, group)).ToDictionary(kv => kv.Key, kv => kv.Value.Committed),
                ends, "kcat auto-commit", members.All);
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce(members.All, all), "kcat -G A, B, C over rounds 1-3\n" + GroupCheck.DescribeAll(members.All));

            await a.StopAsync();
            await bb.StopAsync();
            var before = await CkCommittedAsync(b, topic, group);
            Assert.All(before, kv => Assert.Equal(ends[kv.Key], kv.Value.Committed));

            await broker.StopAsync();
            await broker.RestartAsync();
            var after = await CkCommittedAsync(b, topic, group);
            Assert.Equal(before.ToDictionary(kv => kv.Key, kv => kv.Value.Committed), after.ToDictionary(kv => kv.Key, kv => kv.Value.Committed));

            // A new member after the restart reads only what was produced after the last commit.
            var round4 = await GroupData.ProduceAsync(b, topic, "r4", 40, partitions);
            var d = members.Start(GroupDriver.Kcat, "D");
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed([d], round4), Wait, "D to consume round 4 after the restart");
            await d.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce([d], round4), "kcat -G D after the broker restart must read exactly round 4\n" + d.Describe());
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce(members.All, GroupData.Merge(all, round4)), "all kcat members, rounds 1-4");
        });
    }

    // ------------------------------------------------------------------ 2. confluent-kafka

    [Fact]
    public async Task Confluent_manual_commits_member_leaves_and_joins_then_broker_restart()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 6;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-ck", partitions);
            var group = UniqueGroup("ck");
            await using var members = new MemberSet(b, topic, group) { Output = output };
            // 20 ms per record and a commit every 10 records: round 1 takes seconds, so C leaves and D joins mid-stream.
            var slow = new GroupMemberOptions { Commit = "manual", DelayMs = 20, Batch = 10 };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 360, partitions);
            var a = members.Start(GroupDriver.Confluent, "A", slow);
            var bb = members.Start(GroupDriver.Confluent, "B", slow);
            var c = members.Start(GroupDriver.Confluent, "C", slow);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true),
                Wait, "three confluent-kafka members to split 6 partitions");

            // Mid-stream: C leaves, D joins.
            await GroupCheck.UntilAsync(members.All, () => members.All.Sum(m => m.Records.Count) >= 60, Wait, "60 records consumed");
            await c.StopAsync();
            var d = members.Start(GroupDriver.Confluent, "D", slow);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true)
                && GroupCheck.AllConsumed(members.All, round1), Wait, "A, B and D to split the partitions and consume round 1");
            Assert.True(c.Records.Count > 0 && d.Records.Any(r => round1.ContainsKey((r.Partition, r.Offset))),
                $"C must leave and D join while round 1 is consumed: C consumed {c.Records.Count}, D {d.Records.Count(r => round1.ContainsKey((r.Partition, r.Offset)))} records of round 1\n{GroupCheck.DescribeAll(members.All)}");

            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 120, partitions);
            var all = GroupData.Merge(round1, round2);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, all), Wait, "round 2 to be consumed");
            var ends = GroupData.Ends(all.Keys, partitions);

            // committed() shows what the members committed; the watermarks match the log.
            var committed = await WaitForCommittedAsync(async () => (await CkCommittedAsync(b, topic, group)).ToDictionary(kv => kv.Key, kv => kv.Value.Committed),
                ends, "manual commits", members.All);
            var reported = new Dictionary<int, long>();
            foreach (var m in members.All)
                foreach (var (p, o) in m.Committed)
                    reported[p] = Math.Max(reported.GetValueOrDefault(p), o);
            Assert.Equal(GroupData.Show(committed), GroupData.Show(reported));
            var marks = await CkCommittedAsync(b, topic, group);
            Assert.All(marks, kv =>
            {
                Assert.Null(kv.Value.Error);
                Assert.Equal(0, kv.Value.Low);
                Assert.Equal(ends[kv.Key], kv.Value.High);
            });
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce(members.All, all), "confluent-kafka A, B, C (left), D (joined)\n" + GroupCheck.DescribeAll(members.All));

            foreach (var m in members.Live.ToList()) await m.StopAsync();
            await broker.StopAsync();
            await broker.RestartAsync();
            var after = await CkCommittedAsync(b, topic, group);
            Assert.Equal(GroupData.Show(ends), GroupData.Show(after.ToDictionary(kv => kv.Key, kv => kv.Value.Committed)));

            var round3 = await GroupData.ProduceAsync(b, topic, "r3", 60, partitions);
            var e = members.Start(GroupDriver.Confluent, "E", new GroupMemberOptions { Commit = "manual" });
            await GroupCheck.UntilAsync([e], () => GroupCheck.AllConsumed([e], round3), Wait, "E to consume round 3 after the restart");
            await e.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce([e], round3), "E after the broker restart must read exactly round 3\n" + e.Describe());
            var final = await CkCommittedAsync(b, topic, group);
            Assert.Equal(GroupData.Show(GroupData.Ends(GroupData.Merge(all, round3).Keys, partitions)),
                GroupData.Show(final.ToDictionary(kv => kv.Key, kv => kv.Value.Committed)));
        });
    }

    [Fact]
    public async Task Confluent_cooperative_sticky_moves_only_the_partitions_that_change_owner()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 4;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-coop", partitions);
            var group = UniqueGroup("coop");
            await using var members = new MemberSet(b, topic, group) { Output = output };
            // 20 ms per record: B joins while A is still working through round 1.
            var coop = new GroupMemberOptions { Commit = "manual", Strategy = "cooperative-sticky", DelayMs = 20, Batch = 10 };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 120, partitions);
            var a = members.Start(GroupDriver.Confluent, "A", coop);
            await GroupCheck.UntilAsync(members.All, () => a.Owned is { Count: partitions } && a.Records.Count >= 20, Wait, "A to own all partitions");

            var bb = members.Start(GroupDriver.Confluent, "B", coop);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true)
                && GroupCheck.AllConsumed(members.All, round1), Wait, "A and B to split the partitions (cooperative) and consume round 1");
            var aEvents = a.Assignments;
            var problems = new List<string>();
            // Incremental: A gives up only what B gets and never owns nothing in between.
            foreach (var ev in aEvents.Skip(1))
            {
                if (ev.Owned.Count == 0) problems.Add($"A was left with no partitions: {ev}");
                if (ev.Kind == "revoked" && ev.Partitions.Count == partitions) problems.Add($"A had all partitions revoked (eager, not cooperative): {ev}");
            }
            var moved = aEvents.Where(ev => ev.Kind == "revoked").SelectMany(ev => ev.Partitions).OrderBy(p => p).ToList();
            if (!moved.SequenceEqual(bb.Owned!.OrderBy(p => p))) problems.Add($"A gave up [{string.Join(',', moved)}], B owns [{string.Join(',', bb.Owned!)}]");
            RecordAssert.NoProblems(problems, GroupCheck.DescribeAll(members.All));

            // Both consume what is produced now.
            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 40, partitions);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, round2), Wait, "round 2 to be consumed by A and B");
            Assert.True(bb.Records.Count > 0, $"B consumed nothing\n{GroupCheck.DescribeAll(members.All)}");

            var groups = await KafkaClients.Confluent.CommandAsync("list-groups", b);
            var listed = groups.GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("id").GetString() == group);
            Assert.Equal("cooperative-sticky", listed.GetProperty("protocol").GetString());
            Assert.Equal("Stable", listed.GetProperty("state").GetString());

            // B leaves: A gets B's partitions added without losing its own.
            var aBefore = a.Assignments.Count;
            var aOwned = a.Owned!.ToList();
            await bb.StopAsync();
            await GroupCheck.UntilAsync(members.All, () => a.Owned is { Count: partitions }, Wait, "A to get B's partitions back");
            var later = a.Assignments.Skip(aBefore).ToList();
            Assert.True(later.All(ev => ev.Kind == "assigned"), $"A lost partitions when B left: {string.Join("; ", later)}");
            Assert.All(aOwned, p => Assert.DoesNotContain(p, later.SelectMany(ev => ev.Partitions)));

            var round3 = await GroupData.ProduceAsync(b, topic, "r3", 40, partitions);
            var all = GroupData.Merge(round1, round2, round3);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, all), Wait, "round 3 to be consumed by A");
            await WaitForCommittedAsync(async () => (await CkCommittedAsync(b, topic, group)).ToDictionary(kv => kv.Key, kv => kv.Value.Committed),
                GroupData.Ends(all.Keys, partitions), "cooperative commits", members.All);
            await a.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce(members.All, all), "cooperative-sticky A, B\n" + GroupCheck.DescribeAll(members.All));
        });
    }

    [Fact]
    public async Task Confluent_static_member_restarting_within_session_timeout_gets_its_partitions_back_without_rebalance()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 4;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-static", partitions);
            var group = UniqueGroup("static");
            await using var members = new MemberSet(b, topic, group) { Output = output };
            GroupMemberOptions Static(string id) => new() { Commit = "manual", InstanceId = id, SessionTimeoutMs = 10_000 };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 80, partitions);
            var s1 = members.Start(GroupDriver.Confluent, "S1", Static("s1"));
            var s2 = members.Start(GroupDriver.Confluent, "S2", Static("s2"));
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true)
                && GroupCheck.AllConsumed(members.All, round1), Wait, "two static members to split the partitions and consume round 1");
            await WaitForCommittedAsync(async () => (await CkCommittedAsync(b, topic, group)).ToDictionary(kv => kv.Key, kv => kv.Value.Committed),
                GroupData.Ends(round1.Keys, partitions), "static members' commits", members.All);

            var s1Events = s1.Assignments.Count;
            var s2Owned = s2.Owned!.OrderBy(p => p).ToList();
            var stopped = DateTime.UtcNow;
            await s2.StopAsync(); // a static member closes without LeaveGroup
            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 40, partitions);
            var s2b = members.Start(GroupDriver.Confluent, "S2'", Static("s2"));
            await GroupCheck.UntilAsync(members.All, () => s2b.Owned is not null, Wait, "the restarted static member S2' to get an assignment");
            var elapsed = DateTime.UtcNow - stopped;
            Assert.Equal(s2Owned, s2b.Owned!.OrderBy(p => p).ToList());
            var all = GroupData.Merge(round1, round2);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, all), Wait, "round 2 to be consumed");
            Assert.True(s1.Assignments.Count == s1Events,
                $"S1 saw a rebalance when static member s2 restarted after {elapsed.TotalSeconds:F1}s: {string.Join("; ", s1.Assignments.Skip(s1Events))}");
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce(members.All, all), "static members S1, S2, S2'\n" + GroupCheck.DescribeAll(members.All));
        });
    }

    [Fact]
    public async Task Confluent_members_ride_through_a_graceful_broker_restart_without_rebalance_or_duplicates()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 4;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-ride", partitions);
            var group = UniqueGroup("ride");
            await using var members = new MemberSet(b, topic, group) { Output = output };
            var opts = new GroupMemberOptions { Commit = "manual", DelayMs = 20, Batch = 10, SessionTimeoutMs = 10_000 };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 200, partitions);
            var a = members.Start(GroupDriver.Confluent, "A", opts);
            var bb = members.Start(GroupDriver.Confluent, "B", opts);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true)
                && members.All.Sum(m => m.Records.Count) >= 40, Wait, "A and B to split the partitions and consume 40 records");
            var events = (a.Assignments.Count, bb.Assignments.Count);

            // The group (members, generation, assignment) and the offsets are durable: the members carry on.
            await broker.StopAsync();
            await broker.RestartAsync();
            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 40, partitions);
            var all = GroupData.Merge(round1, round2);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, all), Wait, "rounds 1 and 2 to be consumed after the restart");
            await WaitForCommittedAsync(async () => (await CkCommittedAsync(b, topic, group)).ToDictionary(kv => kv.Key, kv => kv.Value.Committed),
                GroupData.Ends(all.Keys, partitions), "commits after the restart", members.All);
            Assert.True((a.Assignments.Count, bb.Assignments.Count) == events,
                $"the members were rebalanced across the broker restart:\n{a.Summary()}\n{bb.Summary()}");
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce(members.All, all), "A and B across a broker restart\n" + GroupCheck.DescribeAll(members.All));
            await a.StopAsync();
            await bb.StopAsync();
        });
    }

    [Fact]
    public async Task Confluent_killed_member_expires_after_the_session_timeout_and_its_partitions_resume_at_its_last_commit()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 4;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-expire", partitions);
            var group = UniqueGroup("expire");
            await using var members = new MemberSet(b, topic, group) { Output = output };
            var opts = new GroupMemberOptions { Commit = "manual", DelayMs = 20, Batch = 10, SessionTimeoutMs = 6000 };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 160, partitions);
            var a = members.Start(GroupDriver.Confluent, "A", opts);
            var bb = members.Start(GroupDriver.Confluent, "B", opts);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions, everyMemberHasPartitions: true)
                && bb.Records.Count >= 20, Wait, "A and B to split the partitions and B to consume 20 records");

            // SIGKILL: no commit, no LeaveGroup. The broker expires B after session.timeout.ms (6 s).
            var killed = DateTime.UtcNow;
            await bb.KillAsync();
            var bCommitted = bb.Committed;
            var bRecords = bb.Records;
            await GroupCheck.UntilAsync(members.All, () => a.Owned is { Count: partitions }, TimeSpan.FromSeconds(30), "A to take over B's partitions");
            var took = DateTime.UtcNow - killed;
            AssertBrokerSaw(broker, group, "session timed out");
            Assert.True(took > TimeSpan.FromSeconds(4), $"A took over after {took.TotalSeconds:F1}s, before B's 6 s session could expire");

            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 40, partitions);
            var all = GroupData.Merge(round1, round2);
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, all), Wait, "everything to be consumed after B expired");
            // Nothing skipped; the only records read twice are those B consumed after its last acknowledged commit.
            var problems = GroupCheck.ExactlyOnce(members.All, all)
                .Where(p => !p.Contains(" times, by ", StringComparison.Ordinal)).ToList();
            var bSeen = bRecords.Select(r => (r.Partition, r.Offset)).ToHashSet();
            foreach (var dup in members.All.SelectMany(m => m.Records).GroupBy(r => (r.Partition, r.Offset)).Where(g => g.Count() > 1))
            {
                var (p, o) = dup.Key;
                if (!bSeen.Contains(dup.Key) || o < bCommitted.GetValueOrDefault(p, 0))
                    problems.Add($"p{p}@{o} consumed {dup.Count()} times although B committed p{p} up to {bCommitted.GetValueOrDefault(p, 0)}");
            }
            RecordAssert.NoProblems(problems, $"B committed {GroupData.Show(bCommitted)} before SIGKILL\n" + GroupCheck.DescribeAll(members.All));
            await a.StopAsync();
        });
    }

    // ------------------------------------------------------------------ 3. kafka-python

    [Fact]
    public async Task KafkaPython_auto_commit_group_admin_delete_and_broker_restart()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 3;
            var b = broker.Bootstrap;
            var kp = KafkaClients.KafkaPython;
            var topic = await CreateTopicAsync(b, "g-kp", partitions);
            var group = UniqueGroup("kp");
            await using var members = new MemberSet(b, topic, group) { Output = output };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 90, partitions);
            var k1 = members.Start(GroupDriver.KafkaPython, "K1", new GroupMemberOptions { Commit = "auto" });
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.Balanced(members.Live, partitions) && GroupCheck.AllConsumed(members.All, round1),
                Wait, "the kafka-python member to consume round 1");
            var ends = GroupData.Ends(round1.Keys, partitions);
            await WaitForCommittedAsync(async () => (await KpGroupOffsetsAsync(b, group, topic)).ToDictionary(kv => kv.Key, kv => kv.Value.Offset),
                ends, "auto-commit (list_consumer_group_offsets)", members.All);

            var listed = await kp.CommandAsync("list-groups", b);
            Assert.Contains(listed.GetProperty("groups").EnumerateArray(), g => g[0].GetString() == group && g[1].GetString() == "consumer");

            var described = (await kp.CommandAsync("describe-groups", b, "--group", group)).GetProperty("groups").EnumerateArray().Single();
            Assert.Equal(0, described.GetProperty("error_code").GetInt32());
            Assert.Equal("Stable", described.GetProperty("state").GetString());
            Assert.Equal("consumer", described.GetProperty("protocol_type").GetString());
            Assert.Equal("range", described.GetProperty("protocol").GetString());
            var member = described.GetProperty("members").EnumerateArray().Single();
            Assert.Equal("kafkapython-K1", member.GetProperty("client_id").GetString());
            Assert.Equal(Enumerable.Range(0, partitions).Select(p => $"{topic}:{p}"),
                member.GetProperty("assignment").EnumerateArray().Select(x => $"{x[0].GetString()}:{x[1].GetInt32()}"));

            // DeleteGroups refuses a group with an active member.
            var refused = (await kp.CommandAsync("delete-groups", b, "--group", group)).GetProperty("results").EnumerateArray().Single();
            Assert.Equal(68, refused.GetProperty("error_code").GetInt32()); // NON_EMPTY_GROUP

            await k1.StopAsync();
            AssertBrokerSaw(broker, group, "left");
            await broker.StopAsync();
            await broker.RestartAsync();
            var restored = await KpGroupOffsetsAsync(b, group, topic);
            Assert.Equal(GroupData.Show(ends), GroupData.Show(restored.ToDictionary(kv => kv.Key, kv => kv.Value.Offset)));

            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 30, partitions);
            var k2 = members.Start(GroupDriver.KafkaPython, "K2", new GroupMemberOptions { Commit = "auto" });
            await GroupCheck.UntilAsync([k2], () => GroupCheck.AllConsumed([k2], round2), Wait, "K2 to consume round 2 after the restart");
            var all = GroupData.Merge(round1, round2);
            await WaitForCommittedAsync(async () => (await KpGroupOffsetsAsync(b, group, topic)).ToDictionary(kv => kv.Key, kv => kv.Value.Offset),
                GroupData.Ends(all.Keys, partitions), "K2's auto-commit", [k2]);
            await k2.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce([k2], round2), "K2 after the broker restart must read exactly round 2\n" + k2.Describe());

            // Empty now: DeleteGroups succeeds and the offsets are gone.
            var deleted = (await kp.CommandAsync("delete-groups", b, "--group", group)).GetProperty("results").EnumerateArray().Single();
            Assert.Equal(0, deleted.GetProperty("error_code").GetInt32());
            Assert.Empty(await KpGroupOffsetsAsync(b, group, topic));
            listed = await kp.CommandAsync("list-groups", b);
            Assert.DoesNotContain(listed.GetProperty("groups").EnumerateArray(), g => g[0].GetString() == group);
            var ck = await CkCommittedAsync(b, topic, group);
            Assert.All(ck, kv => Assert.True(kv.Value.Committed < 0, $"partition {kv.Key}: committed {kv.Value.Committed} after DeleteGroups"));
        });
    }

    [Fact]
    public async Task KafkaPython_commit_metadata_reads_back_and_survives_SIGKILL()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 2;
            var b = broker.Bootstrap;
            var kp = KafkaClients.KafkaPython;
            var topic = await CreateTopicAsync(b, "g-meta", partitions);
            var group = UniqueGroup("meta");
            await using var members = new MemberSet(b, topic, group) { Output = output };

            // A group member committing {tp: OffsetAndMetadata(next, "m1:p:next")} after every batch.
            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 40, partitions);
            var ends = GroupData.Ends(round1.Keys, partitions);
            var k1 = members.Start(GroupDriver.KafkaPython, "K1", new GroupMemberOptions { Commit = "manual", MetadataPrefix = "m1" });
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, round1)
                && ends.All(kv => k1.Committed.GetValueOrDefault(kv.Key) == kv.Value), Wait, "K1 to consume and commit round 1");
            Assert.Empty(k1.CommitFailures);
            var committed = await kp.CommandAsync("committed", b, "--topic", topic, "--group", group);
            foreach (var p in committed.GetProperty("partitions").EnumerateArray())
            {
                var partition = p.GetProperty("partition").GetInt32();
                Assert.Equal(ends[partition], p.GetProperty("offset").GetInt64());
                Assert.Equal($"m1:{partition}:{ends[partition]}", p.GetProperty("metadata").GetString());
            }
            await k1.StopAsync();

            // A commit without joining (generation -1), with non-ASCII metadata, read back through committed() and the admin API.
            const string meta = "meta ✓ ünï";
            await kp.CommandAsync("commit", b, "--topic", topic, "--group", group, "--offsets", "0:7,1:13", "--metadata", meta);
            var want = new Dictionary<int, (long, string?)> { [0] = (7, meta), [1] = (13, meta) };
            await AssertKpOffsetsAsync(b, group, topic, want, "after the standalone commit");

            // Metadata over offset.metadata.max.bytes (4096) is refused (OFFSET_METADATA_TOO_LARGE) and changes nothing.
            var tooLarge = await kp.RunAsync("commit", b, ["--topic", topic, "--group", group, "--offsets", "0:1", "--metadata", new string('x', 5000)]);
            Assert.True(tooLarge.ExitCode != 0 && tooLarge.Stderr.Contains("OffsetMetadataTooLarge", StringComparison.Ordinal),
                $"a 5000-byte metadata commit was not refused with OffsetMetadataTooLarge. {tooLarge.Describe()}");
            await AssertKpOffsetsAsync(b, group, topic, want, "after the refused commit");

            // SIGKILL right after an acknowledged commit: it is there after the restart.
            await kp.CommandAsync("commit", b, "--topic", topic, "--group", group, "--offsets", "0:19,1:3", "--metadata", "before-kill");
            broker.Kill();
            await broker.RestartAsync();
            want = new Dictionary<int, (long, string?)> { [0] = (19, "before-kill"), [1] = (3, "before-kill") };
            await AssertKpOffsetsAsync(b, group, topic, want, "after SIGKILL and restart");
            var ck = await CkCommittedAsync(b, topic, group);
            Assert.Equal(19, ck[0].Committed);
            Assert.Equal(3, ck[1].Committed);
        });
    }

    private static async Task AssertKpOffsetsAsync(string b, string group, string topic, Dictionary<int, (long Offset, string? Metadata)> want, string when)
    {
        var viaCommitted = (await KafkaClients.KafkaPython.CommandAsync("committed", b, "--topic", topic, "--group", group))
            .GetProperty("partitions").EnumerateArray()
            .ToDictionary(p => p.GetProperty("partition").GetInt32(), p => (p.GetProperty("offset").GetInt64(), p.GetProperty("metadata").GetString()));
        var viaAdmin = await KpGroupOffsetsAsync(b, group, topic);
        foreach (var (p, w) in want)
        {
            Assert.True(viaCommitted.TryGetValue(p, out var c) && c == w, $"{when}: committed() of partition {p} is {c}, expected {w}");
            Assert.True(viaAdmin.TryGetValue(p, out var a) && a == w, $"{when}: list_consumer_group_offsets of partition {p} is {a}, expected {w}");
        }
    }

    // ------------------------------------------------------------------ 4. kafkajs

    [Fact]
    public async Task Kafkajs_eachBatch_fetch_set_reset_and_delete_offsets_across_a_restart()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 3;
            var b = broker.Bootstrap;
            var kjs = KafkaClients.Kafkajs;
            var topic = await CreateTopicAsync(b, "g-kjs", partitions);
            var group = UniqueGroup("kjs");
            await using var members = new MemberSet(b, topic, group) { Output = output };

            var round1 = await GroupData.ProduceAsync(b, topic, "r1", 90, partitions);
            var j1 = members.Start(GroupDriver.Kafkajs, "J1");
            await GroupCheck.UntilAsync(members.All, () => GroupCheck.AllConsumed(members.All, round1), Wait, "J1 to consume round 1");
            var ends = GroupData.Ends(round1.Keys, partitions);
            await WaitForCommittedAsync(() => KjsFetchOffsetsAsync(b, group, topic), ends, "kafkajs autoCommit (fetchOffsets)", members.All);

            // setOffsets and deleteGroups need an empty group.
            var refused = await kjs.CommandAsync("set-offsets", b, "--group", group, "--topic", topic, "--offsets", "0:1");
            Assert.False(refused.GetProperty("ok").GetBoolean(), refused.ToString());
            Assert.Contains("no running instances", refused.GetProperty("error").GetString());
            var notDeleted = await kjs.CommandAsync("delete-groups", b, "--group", group);
            Assert.False(notDeleted.GetProperty("ok").GetBoolean(), notDeleted.ToString());
            Assert.Equal(68, notDeleted.GetProperty("results").EnumerateArray().Single().GetProperty("error_code").GetInt32());

            await j1.StopAsync();
            await broker.StopAsync();
            await broker.RestartAsync();
            Assert.Equal(GroupData.Show(ends), GroupData.Show(await KjsFetchOffsetsAsync(b, group, topic)));

            // Resumes at the committed offsets after the restart.
            var round2 = await GroupData.ProduceAsync(b, topic, "r2", 30, partitions);
            var all = GroupData.Merge(round1, round2);
            ends = GroupData.Ends(all.Keys, partitions);
            var j2 = members.Start(GroupDriver.Kafkajs, "J2");
            await GroupCheck.UntilAsync([j2], () => GroupCheck.AllConsumed([j2], round2), Wait, "J2 to consume round 2");
            await WaitForCommittedAsync(() => KjsFetchOffsetsAsync(b, group, topic), ends, "J2's commits", [j2]);
            await j2.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce([j2], round2), "J2 after the broker restart must read exactly round 2\n" + j2.Describe());

            // setOffsets: a new member starts exactly there.
            var set = new Dictionary<int, long> { [0] = 5, [1] = 20, [2] = ends[2] - 2 };
            var ok = await kjs.CommandAsync("set-offsets", b, "--group", group, "--topic", topic, "--offsets",
                string.Join(',', set.Select(kv => $"{kv.Key}:{kv.Value}")));
            Assert.True(ok.GetProperty("ok").GetBoolean(), ok.ToString());
            Assert.Equal(GroupData.Show(set), GroupData.Show(await KjsFetchOffsetsAsync(b, group, topic)));
            var fromSet = all.Where(kv => kv.Key.Item2 >= set[kv.Key.Item1]).ToDictionary(kv => kv.Key, kv => kv.Value);
            var j3 = members.Start(GroupDriver.Kafkajs, "J3");
            await GroupCheck.UntilAsync([j3], () => GroupCheck.AllConsumed([j3], fromSet), Wait, "J3 to consume from the offsets set");
            await WaitForCommittedAsync(() => KjsFetchOffsetsAsync(b, group, topic), ends, "J3's commits", [j3]);
            await j3.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce([j3], fromSet), $"J3 after setOffsets {GroupData.Show(set)}\n" + j3.Describe());

            // resetOffsets({earliest: true}): everything again from the start.
            await kjs.CommandAsync("reset-offsets", b, "--group", group, "--topic", topic, "--earliest");
            var reset = await KjsFetchOffsetsAsync(b, group, topic);
            // kafkajs commits its EARLIEST sentinel (-2); the broker keeps what was committed.
            Assert.All(reset, kv => Assert.True(kv.Value is -2 or 0, $"partition {kv.Key}: {kv.Value} after resetOffsets earliest"));
            var j4 = members.Start(GroupDriver.Kafkajs, "J4");
            await GroupCheck.UntilAsync([j4], () => GroupCheck.AllConsumed([j4], all), Wait, "J4 to consume everything after resetOffsets");
            await WaitForCommittedAsync(() => KjsFetchOffsetsAsync(b, group, topic), ends, "J4's commits", [j4]);
            await j4.StopAsync();
            RecordAssert.NoProblems(GroupCheck.ExactlyOnce([j4], all), "J4 after resetOffsets earliest\n" + j4.Describe());

            var deleted = await kjs.CommandAsync("delete-groups", b, "--group", group);
            Assert.True(deleted.GetProperty("ok").GetBoolean(), deleted.ToString());
            Assert.All(await KjsFetchOffsetsAsync(b, group, topic), kv => Assert.Equal(-1, kv.Value));
            var groups = await kjs.CommandAsync("list-groups", b);
            Assert.DoesNotContain(groups.GetProperty("groups").EnumerateArray(), g => g[0].GetString() == group);
        });
    }

    // ------------------------------------------------------------------ 6. unknown group

    [Fact]
    public async Task OffsetFetch_of_a_group_that_never_committed_answers_no_offset_without_error()
    {
        await using var broker = await StartBrokerAsync();
        await broker.WithBrokerLogAsync(async () =>
        {
            const int partitions = 2;
            var b = broker.Bootstrap;
            var topic = await CreateTopicAsync(b, "g-none", partitions);
            await GroupData.ProduceAsync(b, topic, "r", 10, partitions);
            var group = UniqueGroup("never");

            // confluent-kafka: OFFSET_INVALID (-1001) is librdkafka's "no committed offset" (the broker answers -1).
            var ck = await CkCommittedAsync(b, topic, group);
            Assert.Equal(partitions, ck.Count);
            Assert.All(ck.Values, o =>
            {
                Assert.Equal(-1001, o.Committed);
                Assert.Null(o.Error);
                Assert.Equal(5, o.High);
            });

            // kafka-python: committed() is None; list_consumer_group_offsets of named partitions answers -1.
            var kp = await KafkaClients.KafkaPython.CommandAsync("committed", b, "--topic", topic, "--group", group);
            Assert.All(kp.GetProperty("partitions").EnumerateArray(), p => Assert.Equal(JsonValueKind.Null, p.GetProperty("offset").ValueKind));
            var admin = await KafkaClients.KafkaPython.CommandAsync("group-offsets", b, "--group", group, "--topic", topic, "--partitions", "0,1");
            Assert.All(admin.GetProperty("offsets").EnumerateArray(), o => Assert.Equal(-1, o.GetProperty("offset").GetInt64()));
            var all = await KafkaClients.KafkaPython.CommandAsync("group-offsets", b, "--group", group);
            Assert.Empty(all.GetProperty("offsets").EnumerateArray());

            // kafkajs: fetchOffsets answers -1.
            var kjs = await KjsFetchOffsetsAsync(b, group, topic);
            Assert.Equal(partitions, kjs.Count);
            Assert.All(kjs.Values, o => Assert.Equal(-1, o));

            // Asking did not create the group.
            var listed = await KafkaClients.KafkaPython.CommandAsync("list-groups", b);
            Assert.DoesNotContain(listed.GetProperty("groups").EnumerateArray(), g => g[0].GetString() == group);
        });
    }
}
