using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;

namespace Cairn.Tests.Groups.Store;

/// <summary>
/// The behaviour every <see cref="IGroupStore"/> must have. A subclass supplies fresh databases ("locations": a file path,
/// a connection string, ...) and opens stores on them; each test gets its own database.
/// </summary>
public abstract class GroupStoreContractTests : IAsyncLifetime
{
    protected const string ClusterA = "cluster-a";
    protected const string ClusterB = "cluster-b";

    private readonly List<IGroupStore> _opened = new();

    /// <summary>A new, empty database for one test.</summary>
    private protected abstract Task<string> NewDatabaseAsync();

    /// <summary>A new (uninitialized) store on <paramref name="location"/>.</summary>
    private protected abstract IGroupStore CreateStore(string location, string clusterId);

    /// <summary>Makes the database claim schema <paramref name="version"/> (as if a newer Cairn had migrated it).</summary>
    private protected abstract Task SetSchemaVersionAsync(string location, int version);

    /// <summary>The newest schema version the store knows.</summary>
    private protected abstract int KnownSchemaVersion { get; }

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _opened) await store.DisposeAsync();
    }

    private protected IGroupStore Open(string location, string clusterId = ClusterA)
    {
        var store = CreateStore(location, clusterId);
        _opened.Add(store);
        return store;
    }

    private protected async Task<IGroupStore> OpenInitializedAsync(string location, string clusterId = ClusterA)
    {
        var store = Open(location, clusterId);
        await store.InitializeAsync();
        return store;
    }

    private protected async Task<(string Location, IGroupStore Store)> FreshAsync(string clusterId = ClusterA)
    {
        var location = await NewDatabaseAsync();
        return (location, await OpenInitializedAsync(location, clusterId));
    }

    private protected static readonly Guid TopicAId = new("6d2b3b8e-4a1f-4f9e-9c59-1b0f0d5d9a01");
    private protected static readonly Guid TopicBId = new("0a5f4c7e-92e3-4e21-8f1b-7c3c2e6f4b02");
    private protected static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);

    private protected static CommittedOffset Offset(string topic, Guid topicId, int partition, long offset, int epoch = -1, string? metadata = null, DateTimeOffset? time = null) =>
        new(topic, topicId, partition, offset, epoch, metadata, time ?? T0);

    private protected static GroupOffsetCommit Commit(string group, params CommittedOffset[] offsets) => new(group, offsets);

    private protected static IReadOnlyList<GroupOffsetCommit> One(string group, params CommittedOffset[] offsets) => [Commit(group, offsets)];

    private protected static List<CommittedOffset> Sorted(IEnumerable<CommittedOffset> offsets) =>
        offsets.OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition).ThenBy(o => o.TopicId).ToList();

    private protected static void AssertOffsets(IEnumerable<CommittedOffset> expected, IEnumerable<CommittedOffset> actual)
    {
        var e = Sorted(expected);
        var a = Sorted(actual);
        Assert.Equal(e.Count, a.Count);
        for (var i = 0; i < e.Count; i++)
        {
            Assert.Equal(e[i].Topic, a[i].Topic);
            Assert.Equal(e[i].TopicId, a[i].TopicId);
            Assert.Equal(e[i].Partition, a[i].Partition);
            Assert.Equal(e[i].Offset, a[i].Offset);
            Assert.Equal(e[i].LeaderEpoch, a[i].LeaderEpoch);
            Assert.Equal(e[i].Metadata, a[i].Metadata);
            Assert.Equal(e[i].CommitTime.ToUnixTimeMilliseconds(), a[i].CommitTime.ToUnixTimeMilliseconds());
        }
    }

    private protected static void AssertGroup(StoredGroup expected, StoredGroup actual)
    {
        Assert.Equal(expected.GroupId, actual.GroupId);
        Assert.Equal(expected.ProtocolType, actual.ProtocolType);
        Assert.Equal(expected.Protocol, actual.Protocol);
        Assert.Equal(expected.Generation, actual.Generation);
        Assert.Equal(expected.Leader, actual.Leader);
        Assert.Equal(expected.EmptySince?.ToUnixTimeMilliseconds(), actual.EmptySince?.ToUnixTimeMilliseconds());
        Assert.Equal(expected.Members.Count, actual.Members.Count);
        for (var i = 0; i < expected.Members.Count; i++)
        {
            var e = expected.Members[i];
            var a = actual.Members[i];
            Assert.Equal(e.MemberId, a.MemberId);
            Assert.Equal(e.GroupInstanceId, a.GroupInstanceId);
            Assert.Equal(e.ClientId, a.ClientId);
            Assert.Equal(e.ClientHost, a.ClientHost);
            Assert.Equal(e.RebalanceTimeoutMs, a.RebalanceTimeoutMs);
            Assert.Equal(e.SessionTimeoutMs, a.SessionTimeoutMs);
            Assert.Equal(e.Protocols.Count, a.Protocols.Count);
            for (var j = 0; j < e.Protocols.Count; j++)
            {
                Assert.Equal(e.Protocols[j].Name, a.Protocols[j].Name);
                Assert.Equal(e.Protocols[j].Metadata, a.Protocols[j].Metadata);
            }
            Assert.Equal(e.Assignment, a.Assignment);
        }
    }

    private protected static StoredGroup SampleGroup(string groupId, DateTimeOffset? emptySince = null, int generation = 7)
    {
        var random = new Random(groupId.GetHashCode(StringComparison.Ordinal) ^ generation);
        var big = new byte[3000];
        random.NextBytes(big);
        return new StoredGroup(
            groupId,
            ProtocolType: "consumer",
            Protocol: "range",
            Generation: generation,
            Leader: "member-1",
            EmptySince: emptySince,
            Members:
            [
                new StoredMember("member-1", GroupInstanceId: "static-1", ClientId: "client-ü", ClientHost: "/127.0.0.1",
                    RebalanceTimeoutMs: 300_000, SessionTimeoutMs: 45_000,
                    Protocols: [new MemberProtocol("range", [0, 1, 2, 255, 0]), new MemberProtocol("cooperative-sticky", [])],
                    Assignment: big),
                new StoredMember("member-2", GroupInstanceId: null, ClientId: "", ClientHost: "/10.0.0.2",
                    RebalanceTimeoutMs: -1, SessionTimeoutMs: int.MaxValue,
                    Protocols: [new MemberProtocol("range", [9])],
                    Assignment: []),
            ]);
    }

    // ------------------------------------------------------------------------------------------------ offsets

    [Fact]
    public async Task Commit_then_get_round_trips_every_field()
    {
        var (_, store) = await FreshAsync();
        var plus2 = new DateTimeOffset(2024, 5, 6, 7, 8, 9, 345, TimeSpan.FromHours(2));
        CommittedOffset[] offsets =
        [
            Offset("orders", TopicAId, 0, 42, epoch: 3, metadata: null, time: T0),
            Offset("orders", TopicAId, 1, 0, epoch: -1, metadata: "", time: plus2),
            Offset("orders", TopicAId, 2, long.MaxValue, epoch: int.MaxValue, metadata: "meta ✓ with unicode", time: T0.AddMilliseconds(1)),
            Offset("payments", TopicBId, 0, -1, epoch: 0, metadata: new string('x', 5000), time: DateTimeOffset.FromUnixTimeMilliseconds(0)),
        ];
        await store.CommitOffsetsAsync(One("g1", offsets));

        var got = await store.GetGroupOffsetsAsync("g1");
        AssertOffsets(offsets, got);
        var byPartition = got.Where(o => o.Topic == "orders").ToDictionary(o => o.Partition);
        Assert.Null(byPartition[0].Metadata);
        Assert.NotNull(byPartition[1].Metadata);
        Assert.Equal("", byPartition[1].Metadata);
        Assert.Equal(3, byPartition[0].LeaderEpoch);
        Assert.Equal(-1, byPartition[1].LeaderEpoch);
        Assert.Equal(plus2, byPartition[1].CommitTime); // same instant
        Assert.Empty(await store.GetGroupOffsetsAsync("no-such-group"));
    }

    [Fact]
    public async Task Overwrite_keeps_the_latest_commit()
    {
        var (_, store) = await FreshAsync();
        await store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 10, epoch: 1, metadata: "first")));
        await store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 20, epoch: 2, metadata: null, time: T0.AddSeconds(5))));
        AssertOffsets([Offset("t", TopicAId, 0, 20, epoch: 2, metadata: null, time: T0.AddSeconds(5))], await store.GetGroupOffsetsAsync("g"));

        // Within one call, later commits of a partition win, across commits of the same group too.
        await store.CommitOffsetsAsync(
        [
            Commit("g", Offset("t", TopicAId, 0, 30), Offset("t", TopicAId, 0, 31, metadata: "mid")),
            Commit("other", Offset("t", TopicAId, 0, 5)),
            Commit("g", Offset("t", TopicAId, 0, 32, metadata: "last"), Offset("t", TopicAId, 1, 1)),
        ]);
        AssertOffsets([Offset("t", TopicAId, 0, 32, metadata: "last"), Offset("t", TopicAId, 1, 1)], await store.GetGroupOffsetsAsync("g"));
        AssertOffsets([Offset("t", TopicAId, 0, 5)], await store.GetGroupOffsetsAsync("other"));
    }

    [Fact]
    public async Task Empty_commits_are_accepted()
    {
        var (_, store) = await FreshAsync();
        await store.CommitOffsetsAsync([]);
        await store.CommitOffsetsAsync([Commit("g")]);
        Assert.Empty(await store.GetGroupOffsetsAsync("g"));
        Assert.Empty(await store.GetAllOffsetsAsync());
    }

    [Fact]
    public async Task GetAll_returns_every_group()
    {
        var (_, store) = await FreshAsync();
        await store.CommitOffsetsAsync(
        [
            Commit("g1", Offset("a", TopicAId, 0, 1), Offset("a", TopicAId, 1, 2)),
            Commit("g2", Offset("b", TopicBId, 0, 3)),
        ]);
        await store.CommitOffsetsAsync(One("g3", Offset("a", TopicAId, 0, 4, metadata: "m")));
        await store.SaveGroupAsync(SampleGroup("group-without-offsets"));

        var all = await store.GetAllOffsetsAsync();
        Assert.Equal(["g1", "g2", "g3"], all.Keys.OrderBy(k => k, StringComparer.Ordinal));
        AssertOffsets([Offset("a", TopicAId, 0, 1), Offset("a", TopicAId, 1, 2)], all["g1"]);
        AssertOffsets([Offset("b", TopicBId, 0, 3)], all["g2"]);
        AssertOffsets([Offset("a", TopicAId, 0, 4, metadata: "m")], all["g3"]);
    }

    [Fact]
    public async Task DeleteOffsets_removes_only_the_named_partitions_of_the_group()
    {
        var (_, store) = await FreshAsync();
        await store.CommitOffsetsAsync(
        [
            Commit("g", Offset("a", TopicAId, 0, 1), Offset("a", TopicAId, 1, 2), Offset("b", TopicBId, 0, 3)),
            Commit("h", Offset("a", TopicAId, 0, 4)),
        ]);
        await store.DeleteOffsetsAsync("g", [("a", 0), ("b", 0), ("missing", 9), ("a", 7)]);
        AssertOffsets([Offset("a", TopicAId, 1, 2)], await store.GetGroupOffsetsAsync("g"));
        AssertOffsets([Offset("a", TopicAId, 0, 4)], await store.GetGroupOffsetsAsync("h"));

        await store.DeleteOffsetsAsync("g", []);
        await store.DeleteOffsetsAsync("g", [("a", 1)]);
        Assert.Empty(await store.GetGroupOffsetsAsync("g"));
        Assert.False((await store.GetAllOffsetsAsync()).ContainsKey("g"));
    }

    [Fact]
    public async Task DeleteTopicOffsets_removes_the_topic_from_every_group()
    {
        var (_, store) = await FreshAsync();
        await store.CommitOffsetsAsync(
        [
            Commit("g1", Offset("doomed", TopicAId, 0, 1), Offset("doomed", TopicAId, 1, 1), Offset("kept", TopicBId, 0, 2)),
            Commit("g2", Offset("doomed", TopicAId, 3, 5)),
        ]);
        // A topic re-created under the same name has a new id: deleting by name removes both generations.
        await store.CommitOffsetsAsync(One("g3", Offset("doomed", Guid.NewGuid(), 0, 8)));
        await store.DeleteTopicOffsetsAsync("doomed");

        AssertOffsets([Offset("kept", TopicBId, 0, 2)], await store.GetGroupOffsetsAsync("g1"));
        Assert.Empty(await store.GetGroupOffsetsAsync("g2"));
        Assert.Empty(await store.GetGroupOffsetsAsync("g3"));
        Assert.Equal(["g1"], (await store.GetAllOffsetsAsync()).Keys);
        await store.DeleteTopicOffsetsAsync("never-existed");
    }

    // ------------------------------------------------------------------------------------------------ groups

    [Fact]
    public async Task Save_get_and_delete_groups()
    {
        var (_, store) = await FreshAsync();
        Assert.Empty(await store.GetGroupsAsync());

        var stable = SampleGroup("stable", emptySince: null);
        var empty = new StoredGroup("empty", ProtocolType: null, Protocol: null, Generation: 0, Leader: null,
            EmptySince: T0.AddMinutes(3), Members: []);
        await store.SaveGroupAsync(stable);
        await store.SaveGroupAsync(empty);

        var groups = (await store.GetGroupsAsync()).OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
        Assert.Equal(2, groups.Count);
        AssertGroup(empty, groups[0]);
        AssertGroup(stable, groups[1]);
        Assert.Null(groups[1].EmptySince);
        Assert.NotNull(groups[0].EmptySince);
        Assert.Null(groups[1].Members[1].GroupInstanceId);
        Assert.Equal("static-1", groups[1].Members[0].GroupInstanceId);
        Assert.Empty(groups[1].Members[1].Assignment);

        // Saving again replaces the group.
        var next = SampleGroup("stable", emptySince: T0, generation: 8) with { Leader = "member-2" };
        await store.SaveGroupAsync(next);
        groups = (await store.GetGroupsAsync()).OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
        AssertGroup(next, groups[1]);

        await store.DeleteGroupAsync("empty");
        await store.DeleteGroupAsync("never-existed");
        AssertGroup(next, Assert.Single(await store.GetGroupsAsync()));
    }

    [Fact]
    public async Task DeleteGroup_removes_its_offsets_and_nothing_else()
    {
        var (_, store) = await FreshAsync();
        await store.SaveGroupAsync(SampleGroup("victim"));
        await store.SaveGroupAsync(SampleGroup("survivor"));
        await store.CommitOffsetsAsync(
        [
            Commit("victim", Offset("a", TopicAId, 0, 1), Offset("b", TopicBId, 0, 1)),
            Commit("survivor", Offset("a", TopicAId, 0, 2)),
            Commit("offsets-only", Offset("a", TopicAId, 0, 3)),
        ]);
        await store.DeleteGroupAsync("victim");
        await store.DeleteGroupAsync("offsets-only"); // a group known only by its offsets

        Assert.Empty(await store.GetGroupOffsetsAsync("victim"));
        Assert.Empty(await store.GetGroupOffsetsAsync("offsets-only"));
        AssertOffsets([Offset("a", TopicAId, 0, 2)], await store.GetGroupOffsetsAsync("survivor"));
        Assert.Equal("survivor", Assert.Single(await store.GetGroupsAsync()).GroupId);
        Assert.Equal(["survivor"], (await store.GetAllOffsetsAsync()).Keys);
    }

    // ------------------------------------------------------------------------------------------------ isolation, concurrency, durability

    [Fact]
    public async Task Stores_with_different_cluster_ids_on_one_database_are_isolated()
    {
        var location = await NewDatabaseAsync();
        var a = await OpenInitializedAsync(location, ClusterA);
        var b = await OpenInitializedAsync(location, ClusterB);

        await a.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 100)));
        await b.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 200), Offset("t", TopicAId, 1, 201)));
        await a.SaveGroupAsync(SampleGroup("g", generation: 1));
        await b.SaveGroupAsync(SampleGroup("g", generation: 2));
        await b.SaveGroupAsync(SampleGroup("only-b"));

        AssertOffsets([Offset("t", TopicAId, 0, 100)], await a.GetGroupOffsetsAsync("g"));
        AssertOffsets([Offset("t", TopicAId, 0, 200), Offset("t", TopicAId, 1, 201)], await b.GetGroupOffsetsAsync("g"));
        Assert.Equal(1, Assert.Single(await a.GetGroupsAsync()).Generation);
        Assert.Equal(2, (await b.GetGroupsAsync()).Count);
        Assert.Single((await a.GetAllOffsetsAsync())["g"]);

        await a.DeleteTopicOffsetsAsync("t");
        Assert.Empty(await a.GetGroupOffsetsAsync("g"));
        Assert.Equal(2, (await b.GetGroupOffsetsAsync("g")).Count);

        await a.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 101)));
        await a.DeleteGroupAsync("g");
        Assert.Empty(await a.GetGroupsAsync());
        Assert.Equal(2, (await b.GetGroupsAsync()).Count);
        Assert.Equal(2, (await b.GetGroupOffsetsAsync("g")).Count);

        await b.DeleteOffsetsAsync("g", [("t", 0)]);
        AssertOffsets([Offset("t", TopicAId, 1, 201)], await b.GetGroupOffsetsAsync("g"));
    }

    [Fact]
    public async Task Concurrent_commits_from_50_tasks_are_all_durable_and_visible()
    {
        var (location, store) = await FreshAsync();
        const int tasks = 50, rounds = 20, partitions = 4;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            await start.Task;
            for (var r = 1; r <= rounds; r++)
            {
                // Each task owns a group; every round commits all its partitions (and one shared group's partition).
                var own = Commit($"group-{t}", Enumerable.Range(0, partitions)
                    .Select(p => Offset("topic", TopicAId, p, r * 1000 + p, epoch: r, metadata: $"t{t}r{r}")).ToArray());
                var shared = Commit("shared", Offset("topic", TopicBId, t, r));
                await store.CommitOffsetsAsync([own, shared]);
            }
        })).ToList();
        start.SetResult();
        await Task.WhenAll(workers);

        void Check(IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>> all)
        {
            Assert.Equal(tasks + 1, all.Count);
            for (var t = 0; t < tasks; t++)
            {
                AssertOffsets(Enumerable.Range(0, partitions)
                    .Select(p => Offset("topic", TopicAId, p, rounds * 1000 + p, epoch: rounds, metadata: $"t{t}r{rounds}")), all[$"group-{t}"]);
            }
            AssertOffsets(Enumerable.Range(0, tasks).Select(t => Offset("topic", TopicBId, t, rounds)), all["shared"]);
        }

        Check(await store.GetAllOffsetsAsync());
        await store.DisposeAsync();
        var reopened = await OpenInitializedAsync(location);
        Check(await reopened.GetAllOffsetsAsync());
    }

    [Fact]
    public async Task Reopening_the_database_keeps_everything()
    {
        var (location, store) = await FreshAsync();
        var group = SampleGroup("g", emptySince: T0);
        await store.SaveGroupAsync(group);
        await store.CommitOffsetsAsync(One("g", Offset("a", TopicAId, 0, 11, epoch: 4, metadata: ""), Offset("b", TopicBId, 2, 12)));
        await store.DisposeAsync();
        await store.DisposeAsync(); // twice is harmless

        var reopened = await OpenInitializedAsync(location);
        AssertGroup(group, Assert.Single(await reopened.GetGroupsAsync()));
        AssertOffsets([Offset("a", TopicAId, 0, 11, epoch: 4, metadata: ""), Offset("b", TopicBId, 2, 12)], await reopened.GetGroupOffsetsAsync("g"));
    }

    // ------------------------------------------------------------------------------------------------ schema

    [Fact]
    public async Task InitializeAsync_twice_and_concurrently_is_harmless()
    {
        var location = await NewDatabaseAsync();
        var first = Open(location);
        var second = Open(location);
        await Task.WhenAll(first.InitializeAsync(), second.InitializeAsync()); // two "processes" migrating one database at once
        await first.InitializeAsync();
        await first.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 1)));
        await first.SaveGroupAsync(SampleGroup("g"));

        var third = await OpenInitializedAsync(location);
        await third.InitializeAsync();
        AssertOffsets([Offset("t", TopicAId, 0, 1)], await third.GetGroupOffsetsAsync("g"));
        Assert.Single(await second.GetGroupsAsync());
    }

    [Fact]
    public async Task A_database_with_a_newer_schema_is_refused_with_a_clear_error()
    {
        var (location, store) = await FreshAsync();
        await store.DisposeAsync();
        await SetSchemaVersionAsync(location, KnownSchemaVersion + 1);

        var newer = Open(location);
        var error = await Assert.ThrowsAsync<GroupStoreSchemaException>(() => newer.InitializeAsync());
        Assert.Contains($"schema version {KnownSchemaVersion + 1}", error.Message);
        Assert.Contains("newer", error.Message);
        Assert.IsAssignableFrom<InvalidOperationException>(error);
    }

    [Fact]
    public async Task Using_a_store_before_InitializeAsync_fails()
    {
        var location = await NewDatabaseAsync();
        var store = Open(location);
        await Assert.ThrowsAsync<InvalidOperationException>(() => store.GetGroupOffsetsAsync("g"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 1))));
    }

    [Fact]
    public async Task A_disposed_store_refuses_work()
    {
        var (_, store) = await FreshAsync();
        await store.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 1))));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.GetGroupsAsync());
    }

    // ------------------------------------------------------------------------------------------------ validation

    [Fact]
    public async Task Invalid_arguments_are_rejected_with_ArgumentException()
    {
        var (_, store) = await FreshAsync();
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitOffsetsAsync(null!));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitOffsetsAsync([null!]));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitOffsetsAsync([new GroupOffsetCommit(null!, [Offset("t", TopicAId, 0, 1)])]));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitOffsetsAsync([new GroupOffsetCommit("g", null!)]));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitOffsetsAsync(One("g", Offset(null!, TopicAId, 0, 1))));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, -1, 1))));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.DeleteOffsetsAsync(null!, [("t", 0)]));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.DeleteOffsetsAsync("g", null!));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.DeleteOffsetsAsync("g", [(null!, 0)]));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.DeleteTopicOffsetsAsync(null!));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.DeleteGroupAsync(null!));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.SaveGroupAsync(null!));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.SaveGroupAsync(SampleGroup("g") with { GroupId = null! }));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.SaveGroupAsync(SampleGroup("g") with { Members = null! }));
        var group = SampleGroup("g");
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.SaveGroupAsync(group with { Members = [group.Members[0] with { Assignment = null! }] }));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.SaveGroupAsync(group with { Members = [group.Members[0] with { MemberId = null! }] }));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.SaveGroupAsync(group with { Members = [group.Members[0] with { Protocols = [new MemberProtocol("x", null!)] }] }));

        // Nothing of the rejected calls was stored.
        Assert.Empty(await store.GetAllOffsetsAsync());
        Assert.Empty(await store.GetGroupsAsync());
    }

    [Fact]
    public async Task A_commit_cancelled_before_it_starts_is_not_written()
    {
        var (_, store) = await FreshAsync();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.CommitOffsetsAsync(One("g", Offset("t", TopicAId, 0, 1)), cts.Token));
        Assert.Empty(await store.GetGroupOffsetsAsync("g"));
    }
}
