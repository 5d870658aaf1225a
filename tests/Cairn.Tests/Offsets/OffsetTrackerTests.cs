using Cairn.Offsets;
using Cairn.Tests.Groups;

namespace Cairn.Tests.Offsets;

public sealed class OffsetTrackerTests
{
    private readonly InMemoryOffsetStore _store = new();
    private readonly ManualTimeProvider _time = new();

    private OffsetTracker Tracker(CommitStrategy strategy, OffsetResetPolicy reset = OffsetResetPolicy.Earliest, IOffsetStore? store = null) =>
        new(store ?? _store, new OffsetTrackerOptions { CommitStrategy = strategy, ResetPolicy = reset, TimeProvider = _time });

    private Task<Offset?> Stored(string source) => _store.GetAsync(source).AsTask();

    [Fact]
    public async Task Auto_commits_every_record()
    {
        await using var tracker = Tracker(CommitStrategy.Auto);
        await tracker.RecordAsync("orders/0", Offset.Sequence(1));
        Assert.Equal(Offset.Sequence(1), await Stored("orders/0"));
        await tracker.RecordAsync("orders/0", Offset.Sequence(2));
        Assert.Equal(Offset.Sequence(2), await Stored("orders/0"));
        Assert.Empty(tracker.Pending);
        Assert.Equal(Offset.Sequence(2), tracker.Committed["orders/0"]);
    }

    [Fact]
    public void Auto_and_Earliest_are_the_defaults()
    {
        var tracker = new OffsetTracker(_store);
        Assert.Equal(CommitStrategy.Auto, tracker.CommitStrategy);
        Assert.Equal(OffsetResetPolicy.Earliest, tracker.ResetPolicy);
    }

    [Fact]
    public async Task EveryN_commits_all_sources_once_n_records_are_pending()
    {
        await using var tracker = Tracker(CommitStrategy.EveryN(3));
        await tracker.RecordAsync("a", Offset.Sequence(1));
        await tracker.RecordAsync("b", Offset.Sequence(1));
        Assert.Null(await Stored("a"));
        Assert.Equal(2, tracker.Pending.Count);
        await tracker.RecordAsync("a", Offset.Sequence(2));
        Assert.Equal(Offset.Sequence(2), await Stored("a"));
        Assert.Equal(Offset.Sequence(1), await Stored("b"));
        Assert.Empty(tracker.Pending);
        // The count starts again.
        await tracker.RecordAsync("a", Offset.Sequence(3));
        await tracker.RecordAsync("a", Offset.Sequence(4));
        Assert.Equal(Offset.Sequence(2), await Stored("a"));
        await tracker.RecordAsync("a", Offset.Sequence(5));
        Assert.Equal(Offset.Sequence(5), await Stored("a"));
    }

    [Fact]
    public async Task Interval_commits_when_the_oldest_pending_record_reaches_the_interval_even_without_new_records()
    {
        await using var tracker = Tracker(CommitStrategy.Interval(TimeSpan.FromSeconds(10)));
        await tracker.RecordAsync("a", Offset.Sequence(1));
        _time.Advance(TimeSpan.FromSeconds(4));
        await tracker.RecordAsync("a", Offset.Sequence(2));
        _time.Advance(TimeSpan.FromSeconds(5.9));
        Assert.Null(await Stored("a"));
        _time.Advance(TimeSpan.FromSeconds(0.1)); // 10 s after the first pending record: the timer fires
        await WaitUntilAsync(async () => await Stored("a") == Offset.Sequence(2));
        Assert.Empty(tracker.Pending);

        // Nothing pending: the timer is not armed, so nothing happens however long we wait.
        _time.Advance(TimeSpan.FromMinutes(5));
        await tracker.RecordAsync("a", Offset.Sequence(3));
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(Offset.Sequence(2), await Stored("a"));
        _time.Advance(TimeSpan.FromSeconds(1));
        await WaitUntilAsync(async () => await Stored("a") == Offset.Sequence(3));
    }

    [Fact]
    public async Task FirstOf_commits_on_whichever_trigger_comes_first()
    {
        await using var tracker = Tracker(CommitStrategy.FirstOf(3, TimeSpan.FromSeconds(10)));
        // Count first.
        for (int i = 1; i <= 3; i++) await tracker.RecordAsync("a", Offset.Sequence(i));
        Assert.Equal(Offset.Sequence(3), await Stored("a"));
        // Then time first.
        await tracker.RecordAsync("a", Offset.Sequence(4));
        Assert.Equal(Offset.Sequence(3), await Stored("a"));
        _time.Advance(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(async () => await Stored("a") == Offset.Sequence(4));
        // And the count restarted with the time commit.
        await tracker.RecordAsync("a", Offset.Sequence(5));
        await tracker.RecordAsync("a", Offset.Sequence(6));
        Assert.Equal(Offset.Sequence(4), await Stored("a"));
        await tracker.RecordAsync("a", Offset.Sequence(7));
        Assert.Equal(Offset.Sequence(7), await Stored("a"));
    }

    [Fact]
    public async Task Manual_commits_only_when_told()
    {
        await using var tracker = Tracker(CommitStrategy.Manual);
        for (int i = 1; i <= 100; i++) await tracker.RecordAsync("a", Offset.Sequence(i));
        await tracker.RecordAsync("b", Offset.Sequence(7));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Empty(await _store.GetAllAsync());
        Assert.Equal(new Dictionary<string, Offset> { ["a"] = Offset.Sequence(100), ["b"] = Offset.Sequence(7) }, tracker.Pending);

        await tracker.CommitAsync("a");
        Assert.Equal(Offset.Sequence(100), await Stored("a"));
        Assert.Null(await Stored("b"));
        await tracker.CommitAllAsync();
        Assert.Equal(Offset.Sequence(7), await Stored("b"));
        Assert.Empty(tracker.Pending);
        await tracker.CommitAsync("never-seen");
    }

    [Fact]
    public async Task Disposing_flushes_pending_commits()
    {
        var tracker = Tracker(CommitStrategy.Manual);
        await tracker.RecordAsync("a", Offset.Sequence(5));
        await tracker.RecordAsync("b", Offset.Sequence(6));
        await tracker.DisposeAsync();
        Assert.Equal(Offset.Sequence(5), await Stored("a"));
        Assert.Equal(Offset.Sequence(6), await Stored("b"));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tracker.RecordAsync("a", Offset.Sequence(6)));
        await tracker.DisposeAsync();
    }

    [Fact]
    public async Task Disposing_an_interval_tracker_flushes_and_stops_the_timer()
    {
        var tracker = Tracker(CommitStrategy.Interval(TimeSpan.FromSeconds(10)));
        await tracker.RecordAsync("a", Offset.Sequence(5));
        await tracker.DisposeAsync();
        Assert.Equal(Offset.Sequence(5), await Stored("a"));
        _time.Advance(TimeSpan.FromSeconds(30)); // no timer left to fire
    }

    [Fact]
    public async Task GetOffset_applies_the_reset_policy_when_nothing_is_stored()
    {
        await using (var earliest = Tracker(CommitStrategy.Auto))
            Assert.Equal(Offset.Earliest, await earliest.GetOffsetAsync("a"));
        await using (var latest = Tracker(CommitStrategy.Auto, OffsetResetPolicy.Latest))
            Assert.Equal(Offset.Latest, await latest.GetOffsetAsync("a"));
        await using var none = Tracker(CommitStrategy.Auto, OffsetResetPolicy.None);
        var ex = await Assert.ThrowsAsync<OffsetNotFoundException>(async () => await none.GetOffsetAsync("orders/4"));
        Assert.Equal("orders/4", ex.SourceName);
        Assert.Contains("orders/4", ex.Message);
        Assert.IsAssignableFrom<OffsetStoreException>(ex);
    }

    [Fact]
    public async Task GetOffset_returns_the_stored_then_the_pending_position()
    {
        await _store.CommitAsync("a", Offset.Sequence(40));
        await using var tracker = Tracker(CommitStrategy.Manual, OffsetResetPolicy.None);
        Assert.Equal(Offset.Sequence(40), await tracker.GetOffsetAsync("a"));
        Assert.Equal(Offset.Sequence(40), tracker.Committed["a"]);
        await tracker.RecordAsync("a", Offset.Sequence(41));
        Assert.Equal(Offset.Sequence(41), await tracker.GetOffsetAsync("a"));
    }

    [Fact]
    public async Task Positions_only_move_forward_unless_reset()
    {
        await using var tracker = Tracker(CommitStrategy.Auto);
        await tracker.RecordAsync("a", Offset.Sequence(10));
        await tracker.RecordAsync("a", Offset.Sequence(4)); // ignored
        Assert.Equal(Offset.Sequence(10), await Stored("a"));
        await tracker.ResetAsync("a", Offset.Sequence(4));
        Assert.Equal(Offset.Sequence(4), await Stored("a"));
        Assert.Equal(Offset.Sequence(4), await tracker.GetOffsetAsync("a"));
        await tracker.RecordAsync("a", Offset.Sequence(5));
        Assert.Equal(Offset.Sequence(5), await Stored("a"));
        // Symbolic and custom positions are always taken as given.
        await tracker.RecordAsync("a", Offset.Latest);
        await tracker.RecordAsync("a", Offset.Sequence(2));
        Assert.Equal(Offset.Sequence(2), await Stored("a"));
    }

    [Fact]
    public async Task Clear_deletes_the_stored_offset_and_forgets_pending_ones()
    {
        await using var tracker = Tracker(CommitStrategy.Manual);
        await _store.CommitAsync("a", Offset.Sequence(3));
        await tracker.RecordAsync("a", Offset.Sequence(9));
        await tracker.ClearAsync("a");
        Assert.Null(await Stored("a"));
        Assert.Empty(tracker.Pending);
        Assert.Equal(Offset.Earliest, await tracker.GetOffsetAsync("a"));
        await tracker.CommitAllAsync();
        Assert.Null(await Stored("a"));
    }

    [Fact]
    public async Task Out_of_order_completion_commits_only_the_contiguous_prefix()
    {
        await using var tracker = Tracker(CommitStrategy.Auto);
        var handles = Enumerable.Range(10, 5).Select(i => tracker.Begin("a", Offset.Sequence(i))).ToArray(); // 10..14
        Assert.Equal(5, tracker.GetInFlightCount("a"));

        await handles[2].CompleteAsync(); // 12
        Assert.Null(await Stored("a"));
        await handles[0].CompleteAsync(); // 10 → next to read is 11
        Assert.Equal(Offset.Sequence(11), await Stored("a"));
        await handles[4].CompleteAsync(); // 14
        Assert.Equal(Offset.Sequence(11), await Stored("a"));
        await handles[1].CompleteAsync(); // 11 → 10, 11, 12 done: next is 13
        Assert.Equal(Offset.Sequence(13), await Stored("a"));
        await tracker.CompleteAsync("a", Offset.Sequence(13)); // all done: 15
        Assert.Equal(Offset.Sequence(15), await Stored("a"));
        Assert.Equal(0, tracker.GetInFlightCount("a"));
    }

    [Fact]
    public async Task Gaps_in_sequence_numbers_do_not_hold_the_position_back()
    {
        // Kafka offsets need not be contiguous (compaction, transaction markers): only begun records count.
        await using var tracker = Tracker(CommitStrategy.Auto);
        var h5 = tracker.Begin("a", Offset.Sequence(5));
        var h9 = tracker.Begin("a", Offset.Sequence(9));
        await h9.CompleteAsync();
        Assert.Null(await Stored("a"));
        await h5.CompleteAsync();
        Assert.Equal(Offset.Sequence(10), await Stored("a"));
    }

    [Fact]
    public async Task Misuse_of_begin_and_complete_is_reported()
    {
        await using var tracker = Tracker(CommitStrategy.Auto);
        Assert.Throws<InvalidOffsetException>(() => tracker.Begin("a", Offset.Latest));
        var handle = tracker.Begin("a", Offset.Sequence(3));
        Assert.Throws<InvalidOperationException>(() => tracker.Begin("a", Offset.Sequence(3)));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await tracker.CompleteAsync("a", Offset.Sequence(4)));
        await handle.CompleteAsync();
        Assert.True(handle.IsCompleted);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await handle.CompleteAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await tracker.CompleteAsync("a", Offset.Sequence(3)));
        var ex = Assert.Throws<InvalidOffsetException>(() => tracker.Begin("a", Offset.Sequence(2))); // below the position reached (4)
        Assert.Equal("a", ex.SourceName);
    }

    [Fact]
    public async Task Records_in_flight_at_a_reset_are_forgotten()
    {
        await using var tracker = Tracker(CommitStrategy.Auto);
        var old = tracker.Begin("a", Offset.Sequence(100));
        await tracker.ResetAsync("a", Offset.Sequence(50));
        Assert.Equal(0, tracker.GetInFlightCount("a"));
        await old.CompleteAsync(); // no effect
        Assert.Equal(Offset.Sequence(50), await Stored("a"));
        Assert.Throws<InvalidOffsetException>(() => tracker.Begin("a", Offset.Sequence(49)));
        await tracker.Begin("a", Offset.Sequence(50)).CompleteAsync();
        Assert.Equal(Offset.Sequence(51), await Stored("a"));
    }

    [Fact]
    public async Task Concurrent_completions_from_many_tasks_end_at_the_last_record()
    {
        await using var tracker = Tracker(CommitStrategy.EveryN(7));
        const int n = 2000;
        var handles = Enumerable.Range(0, n).Select(i => tracker.Begin($"p/{i % 4}", Offset.Sequence(i))).ToArray();
        var order = handles.OrderBy(_ => Random.Shared.Next()).ToArray();
        await Parallel.ForEachAsync(order, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (h, ct) => await h.CompleteAsync(ct));
        await tracker.CommitAllAsync();
        for (int p = 0; p < 4; p++)
            Assert.Equal(Offset.Sequence(Enumerable.Range(0, n).Where(i => i % 4 == p).Max() + 1), await Stored($"p/{p}"));
    }

    [Fact]
    public async Task Concurrent_records_never_move_a_committed_position_backwards()
    {
        var hook = new MonotonicCheck();
        await using var store = _store.WithHooks(hook);
        await using var tracker = Tracker(CommitStrategy.Auto, store: store);
        await Parallel.ForEachAsync(Enumerable.Range(1, 2000), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (i, ct) => await tracker.RecordAsync($"s/{i % 3}", Offset.Sequence(i), ct));
        Assert.Empty(hook.Violations);
        for (int s = 0; s < 3; s++)
            Assert.Equal(Offset.Sequence(Enumerable.Range(1, 2000).Where(i => i % 3 == s).Max()), await Stored($"s/{s}"));
    }

    private sealed class MonotonicCheck : IPostCommitHook
    {
        public List<CommitInfo> Violations { get; } = [];

        public ValueTask OnCommitAsync(CommitInfo commit, CancellationToken cancellationToken = default)
        {
            if (commit.PreviousOffset is { } p && commit.Offset < p) lock (Violations) Violations.Add(commit);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task A_failed_commit_is_thrown_and_the_offset_stays_pending_until_a_retry_succeeds()
    {
        var flaky = new FlakyStore();
        await using var tracker = Tracker(CommitStrategy.Auto, store: flaky);
        flaky.Failing = true;
        var ex = await Assert.ThrowsAsync<OffsetStoreIOException>(async () => await tracker.RecordAsync("a", Offset.Sequence(1)));
        Assert.Equal("a", ex.SourceName);
        Assert.Equal(Offset.Sequence(1), tracker.Pending["a"]);
        flaky.Failing = false;
        await tracker.CommitAllAsync();
        Assert.Equal(Offset.Sequence(1), await flaky.GetAsync("a"));
        Assert.Empty(tracker.Pending);
    }

    [Fact]
    public async Task A_failed_interval_commit_is_kept_for_inspection_and_retried_after_another_interval()
    {
        var flaky = new FlakyStore { Failing = true };
        await using var tracker = Tracker(CommitStrategy.Interval(TimeSpan.FromSeconds(5)), store: flaky);
        await tracker.RecordAsync("a", Offset.Sequence(1));
        _time.Advance(TimeSpan.FromSeconds(5));
        await WaitUntilAsync(() => Task.FromResult(tracker.LastBackgroundCommitError is not null));
        Assert.IsType<OffsetStoreIOException>(tracker.LastBackgroundCommitError);
        flaky.Failing = false;
        _time.Advance(TimeSpan.FromSeconds(5));
        await WaitUntilAsync(async () => await flaky.GetAsync("a") == Offset.Sequence(1));
        await WaitUntilAsync(() => Task.FromResult(tracker.LastBackgroundCommitError is null));
    }

    [Fact]
    public async Task Dispose_reports_a_flush_that_fails()
    {
        var flaky = new FlakyStore();
        var tracker = Tracker(CommitStrategy.Manual, store: flaky);
        await tracker.RecordAsync("a", Offset.Sequence(1));
        flaky.Failing = true;
        await Assert.ThrowsAsync<OffsetStoreIOException>(async () => await tracker.DisposeAsync());
    }

    [Fact]
    public void Strategies_describe_themselves_and_validate_arguments()
    {
        Assert.Equal("Auto", CommitStrategy.Auto.ToString());
        Assert.Equal("Manual", CommitStrategy.Manual.ToString());
        Assert.True(CommitStrategy.Manual.IsManual);
        Assert.Equal("EveryN(5)", CommitStrategy.EveryN(5).ToString());
        Assert.Equal(CommitStrategy.EveryN(5), CommitStrategy.EveryN(5));
        Assert.Equal(TimeSpan.FromSeconds(3), CommitStrategy.Interval(TimeSpan.FromSeconds(3)).TimeInterval);
        Assert.Equal((10, TimeSpan.FromSeconds(1)), (CommitStrategy.FirstOf(10, TimeSpan.FromSeconds(1)).RecordCount!.Value, CommitStrategy.FirstOf(10, TimeSpan.FromSeconds(1)).TimeInterval!.Value));
        Assert.Throws<ArgumentOutOfRangeException>(() => CommitStrategy.EveryN(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CommitStrategy.Interval(TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => CommitStrategy.FirstOf(1, TimeSpan.FromSeconds(-1)));
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met within 10 s");
            await Task.Delay(5);
        }
    }

    /// <summary>An in-memory store whose commits fail while <see cref="Failing"/>.</summary>
    internal sealed class FlakyStore : IOffsetStore
    {
        private readonly InMemoryOffsetStore _inner = new();
        public volatile bool Failing;

        public ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default) => _inner.GetAsync(source, cancellationToken);
        public ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default) => _inner.GetAllAsync(cancellationToken);

        public ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default) =>
            Failing
                ? ValueTask.FromException(new OffsetStoreIOException($"disk on fire (source '{source}')", source, new IOException("disk on fire")))
                : _inner.CommitAsync(source, offset, cancellationToken);

        public ValueTask ClearAsync(string source, CancellationToken cancellationToken = default) => _inner.ClearAsync(source, cancellationToken);
        public ValueTask ClearAllAsync(CancellationToken cancellationToken = default) => _inner.ClearAllAsync(cancellationToken);
        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
