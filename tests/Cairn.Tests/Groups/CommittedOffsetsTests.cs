using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Protocol;
using Cairn.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Groups;

/// <summary>Committed offsets alone: commit, fetch, delete and retention over a registry of groups, a manual clock and an in-memory store.</summary>
public sealed class CommittedOffsetsTests : IDisposable
{
    private static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    private readonly ManualTimeProvider _clock = new();
    private readonly GroupRegistry _groups = new();
    private readonly InMemoryGroupDatabase _database = new();
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "cairn-offsets-" + Guid.NewGuid().ToString("N"));
    private readonly LogManager _logs;

    public CommittedOffsetsTests()
    {
        _logs = LogManager.Open(new StorageOptions { DataDirectory = _dataDir, RunBackgroundTasks = false });
        _logs.CreateTopic("orders", 2);
    }

    public void Dispose()
    {
        _logs.Dispose();
        Directory.Delete(_dataDir, recursive: true);
    }

    private async Task<CommittedOffsets> OpenAsync(IGroupStore? store = null)
    {
        store ??= new InMemoryGroupStore("cluster", _database);
        await store.InitializeAsync();
        // The periodic check is pushed out of the way: the tests run retention themselves.
        return new CommittedOffsets(_groups, store, _logs, new GroupCoordinatorOptions { OffsetsRetention = Retention, OffsetsRetentionCheckInterval = TimeSpan.FromDays(3650) },
            _clock, NullLogger.Instance);
    }

    private static Task<IReadOnlyList<PartitionError>> CommitAsync(CommittedOffsets offsets, string group, long offset, int partition = 0) =>
        offsets.CommitAsync(group, -1, "", null, [new OffsetCommitEntry("orders", partition, offset, -1, null)], CancellationToken.None);

    /// <summary>A group that had members and lost the last one at the clock's current time.</summary>
    private void BecomeEmptyNow(string groupId)
    {
        var group = _groups.GetOrCreate(groupId);
        lock (group) group.EmptySince = _clock.GetUtcNow();
    }

    [Fact]
    public async Task A_group_that_never_had_members_loses_each_offset_retention_after_its_commit_and_then_the_group()
    {
        using var offsets = await OpenAsync();
        await CommitAsync(offsets, "standalone", 5, partition: 0);
        _clock.Advance(TimeSpan.FromDays(2));
        await CommitAsync(offsets, "standalone", 9, partition: 1);

        _clock.Advance(Retention - TimeSpan.FromDays(2));
        Assert.Equal(1, await offsets.ExpireAsync(CancellationToken.None));
        Assert.Equal(1, offsets.Fetch("standalone", null).Single().Partition);
        Assert.NotNull(_groups.Find("standalone"));

        _clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, await offsets.ExpireAsync(CancellationToken.None));
        Assert.Null(_groups.Find("standalone"));
        await using var store = new InMemoryGroupStore("cluster", _database);
        await store.InitializeAsync();
        Assert.Empty(await store.GetAllOffsetsAsync());
    }

    [Fact]
    public async Task An_emptied_group_keeps_its_offsets_for_the_retention_counted_from_when_it_became_empty()
    {
        using var offsets = await OpenAsync();
        await CommitAsync(offsets, "emptied", 5);
        _clock.Advance(Retention * 2); // the commit alone is long past retention
        BecomeEmptyNow("emptied");

        _clock.Advance(Retention - TimeSpan.FromSeconds(1));
        Assert.Equal(0, await offsets.ExpireAsync(CancellationToken.None));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await offsets.ExpireAsync(CancellationToken.None));
        Assert.Null(_groups.Find("emptied"));
    }

    [Fact]
    public async Task Offsets_of_a_group_that_is_not_empty_never_expire()
    {
        using var offsets = await OpenAsync();
        await CommitAsync(offsets, "busy", 5);
        var group = _groups.Find("busy")!;
        lock (group) group.State = GroupState.Stable;
        _clock.Advance(Retention * 10);
        Assert.Equal(0, await offsets.ExpireAsync(CancellationToken.None));
        Assert.Equal(5, offsets.Fetch("busy", null).Single().Offset);
    }

    [Fact]
    public async Task A_group_with_a_member_id_handed_out_stays_when_its_offsets_expire()
    {
        using var offsets = await OpenAsync();
        await CommitAsync(offsets, "joining", 5);
        var group = _groups.Find("joining")!;
        using var pending = _clock.CreateTimer(_ => { }, null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        lock (group) group.PendingMembers["m-1"] = pending;
        _clock.Advance(Retention);
        Assert.Equal(1, await offsets.ExpireAsync(CancellationToken.None));
        Assert.Same(group, _groups.Find("joining"));
        lock (group) Assert.Equal(GroupState.Empty, group.State);
    }

    [Fact]
    public async Task Commits_are_checked_per_partition_and_fetched_in_topic_and_partition_order()
    {
        using var offsets = await OpenAsync();
        var results = await offsets.CommitAsync("g", -1, "", null,
        [
            new OffsetCommitEntry("orders", 1, 7, -1, "m"),
            new OffsetCommitEntry("orders", 2, 7, -1, null),
            new OffsetCommitEntry("missing", 0, 7, -1, null),
            new OffsetCommitEntry("orders", 0, 3, -1, new string('x', 4097)),
        ], CancellationToken.None);
        Assert.Equal([ErrorCode.None, ErrorCode.UnknownTopicOrPartition, ErrorCode.UnknownTopicOrPartition, ErrorCode.OffsetMetadataTooLarge],
            results.Select(r => r.Error));
        await CommitAsync(offsets, "g", 3, partition: 0);
        Assert.Equal([(0, 3L), (1, 7L)], offsets.Fetch("g", null).Select(c => (c.Partition, c.Offset)));
        Assert.Equal([1], offsets.Fetch("g", [("orders", 1), ("orders", 5)]).Select(c => c.Partition));
        Assert.Equal(ErrorCode.IllegalGeneration, (await offsets.CommitAsync("nobody", 3, "m", null,
            [new OffsetCommitEntry("orders", 0, 1, -1, null)], CancellationToken.None)).Single().Error);
    }

    [Fact]
    public async Task A_commit_whose_durable_write_finishes_late_does_not_replace_a_newer_one()
    {
        var store = new GatedStore(new InMemoryGroupStore("cluster", _database));
        using var offsets = await OpenAsync(store);
        var older = CommitAsync(offsets, "g", 10);
        await store.Holding.Task;
        await CommitAsync(offsets, "g", 20);
        store.Release.SetResult();
        await older;
        Assert.Equal(20, offsets.Fetch("g", null).Single().Offset);
    }

    [Fact]
    public async Task Deleting_a_topic_or_offsets_forgets_them_in_memory_and_in_the_store()
    {
        using var offsets = await OpenAsync();
        await CommitAsync(offsets, "a", 1, partition: 0);
        await CommitAsync(offsets, "a", 1, partition: 1);
        await CommitAsync(offsets, "b", 1);
        var (error, partitions) = await offsets.DeleteAsync("a", [("orders", 1), ("gone", 0)], CancellationToken.None);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal([ErrorCode.None, ErrorCode.UnknownTopicOrPartition], partitions.Select(p => p.Error));
        Assert.Equal([0], offsets.Fetch("a", null).Select(c => c.Partition));
        Assert.Equal(ErrorCode.GroupIdNotFound, (await offsets.DeleteAsync("unknown", [("orders", 0)], CancellationToken.None)).Error);

        await offsets.OnTopicDeletedAsync("orders", CancellationToken.None);
        Assert.Empty(offsets.Fetch("a", null));
        Assert.Empty(offsets.Fetch("b", null));
        await using var store = new InMemoryGroupStore("cluster", _database);
        await store.InitializeAsync();
        Assert.Empty(await store.GetAllOffsetsAsync());
    }

    /// <summary>Holds the first commit in the store until released, so a second one can overtake it.</summary>
    private sealed class GatedStore(IGroupStore inner) : IGroupStore
    {
        private int _commits;
        public TaskCompletionSource Holding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task CommitOffsetsAsync(IReadOnlyList<GroupOffsetCommit> commits, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _commits) == 1)
            {
                Holding.SetResult();
                await Release.Task;
            }
            await inner.CommitOffsetsAsync(commits, cancellationToken);
        }

        public Task InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);
        public Task<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>> GetAllOffsetsAsync(CancellationToken cancellationToken = default) =>
            inner.GetAllOffsetsAsync(cancellationToken);
        public Task DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default) =>
            inner.DeleteOffsetsAsync(groupId, partitions, cancellationToken);
        public Task DeleteTopicOffsetsAsync(string topic, CancellationToken cancellationToken = default) => inner.DeleteTopicOffsetsAsync(topic, cancellationToken);
        public Task SaveGroupAsync(StoredGroup group, CancellationToken cancellationToken = default) => inner.SaveGroupAsync(group, cancellationToken);
        public Task<IReadOnlyList<StoredGroup>> GetGroupsAsync(CancellationToken cancellationToken = default) => inner.GetGroupsAsync(cancellationToken);
        public Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default) => inner.DeleteGroupAsync(groupId, cancellationToken);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
