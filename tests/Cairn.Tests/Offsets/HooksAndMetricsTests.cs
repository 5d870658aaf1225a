using System.Diagnostics.Metrics;
using Cairn.Offsets;
using Cairn.Tests.Groups;
using Microsoft.Extensions.Logging;

namespace Cairn.Tests.Offsets;

public sealed class HooksAndMetricsTests
{
    [Fact]
    public async Task Hooks_see_source_offset_previous_offset_and_commit_time()
    {
        var time = new ManualTimeProvider();
        var inner = new InMemoryOffsetStore([new("a", Offset.Sequence(3))]);
        var hook = new RecordingCommitHook();
        await using var store = new InstrumentedOffsetStore(inner, [hook], timeProvider: time);

        await store.CommitAsync("a", Offset.Sequence(4));
        time.Advance(TimeSpan.FromSeconds(1));
        await store.CommitAsync("a", Offset.Sequence(5));
        await store.CommitAsync("b", Offset.Latest);

        var commits = hook.Commits;
        Assert.Equal(3, commits.Count);
        Assert.Equal(new CommitInfo("a", Offset.Sequence(4), Offset.Sequence(3), time.GetUtcNow() - TimeSpan.FromSeconds(1)), commits[0] with { Duration = default });
        Assert.Equal(new CommitInfo("a", Offset.Sequence(5), Offset.Sequence(4), time.GetUtcNow()), commits[1] with { Duration = default });
        Assert.Null(commits[2].PreviousOffset);
        Assert.Equal(2, hook.CommitsOf("a").Count);
        Assert.True(commits[0].Duration >= TimeSpan.Zero);

        await store.ClearAsync("a");
        await store.CommitAsync("a", Offset.Sequence(1));
        Assert.Null(hook.Commits[^1].PreviousOffset);
    }

    [Fact]
    public async Task Hooks_run_for_tracker_commits_and_can_be_awaited()
    {
        var hook = new RecordingCommitHook();
        await using var store = new InMemoryOffsetStore().WithHooks(hook);
        await using var tracker = new OffsetTracker(store, new OffsetTrackerOptions { CommitStrategy = CommitStrategy.Manual });
        var waiting = hook.WaitForAsync(c => c.Source == "x" && c.Offset == Offset.Sequence(2));
        await tracker.RecordAsync("x", Offset.Sequence(2));
        Assert.False(waiting.IsCompleted);
        await tracker.CommitAllAsync();
        var seen = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("x", seen.Source);
        Assert.Same(store.Inner, ((InstrumentedOffsetStore)tracker.Store).Inner);
    }

    [Fact]
    public async Task A_failing_hook_does_not_fail_the_commit_nor_stop_other_hooks()
    {
        var logger = new ListLogger();
        var after = new RecordingCommitHook();
        await using var store = new InstrumentedOffsetStore(new InMemoryOffsetStore(), [new ThrowingHook(), after], logger: logger);
        await store.CommitAsync("a", Offset.Sequence(1));
        Assert.Equal(Offset.Sequence(1), await store.GetAsync("a"));
        Assert.Single(after.Commits);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("ThrowingHook"));
    }

    [Fact]
    public async Task Hooks_do_not_run_for_failed_commits()
    {
        var hook = new RecordingCommitHook();
        var flaky = new OffsetTrackerTests.FlakyStore { Failing = true };
        await using var store = flaky.WithHooks(hook);
        await Assert.ThrowsAsync<OffsetStoreIOException>(async () => await store.CommitAsync("a", Offset.Sequence(1)));
        Assert.Empty(hook.Commits);
    }

    [Fact]
    public async Task The_logging_hook_logs_each_commit()
    {
        var logger = new ListLogger<LoggingCommitHook>();
        await using var store = new InMemoryOffsetStore().WithHooks(new LoggingCommitHook(logger, LogLevel.Information));
        await store.CommitAsync("orders/1", Offset.Sequence(8));
        var entry = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("seq:8", entry.Message);
        Assert.Contains("orders/1", entry.Message);
        Assert.Contains("(none)", entry.Message);
    }

    [Fact]
    public async Task Commit_count_errors_and_latency_are_published_on_the_Cairn_Offsets_meter()
    {
        var storeName = "metrics-test-" + Guid.NewGuid().ToString("N");
        var longs = new List<(string Name, long Value)>();
        var doubles = new List<(string Name, double Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == OffsetMetrics.MeterName) l.EnableMeasurementEvents(instrument);
        };
        bool Mine(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var t in tags) if (t.Key == OffsetMetrics.StoreTag && (string?)t.Value == storeName) return true;
            return false;
        }
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => { if (Mine(tags)) lock (longs) longs.Add((i.Name, v)); });
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => { if (Mine(tags)) lock (doubles) doubles.Add((i.Name, v)); });
        listener.Start();

        var flaky = new OffsetTrackerTests.FlakyStore();
        await using var store = flaky.WithMetrics(storeName);
        await using (var tracker = new OffsetTracker(store))
        {
            for (int i = 1; i <= 5; i++) await tracker.RecordAsync("a", Offset.Sequence(i));
            flaky.Failing = true;
            await Assert.ThrowsAsync<OffsetStoreIOException>(async () => await tracker.RecordAsync("a", Offset.Sequence(6)));
            flaky.Failing = false;
        }

        lock (longs)
        {
            Assert.Equal(6, longs.Where(m => m.Name == "cairn.offsets.commits").Sum(m => m.Value)); // 5 + the flush on dispose
            Assert.Equal(1, longs.Where(m => m.Name == "cairn.offsets.commit.errors").Sum(m => m.Value));
        }
        lock (doubles)
        {
            var durations = doubles.Where(m => m.Name == "cairn.offsets.commit.duration").ToList();
            Assert.Equal(7, durations.Count);
            Assert.All(durations, d => Assert.True(d.Value >= 0));
        }
        Assert.Equal("Cairn.Offsets", OffsetMetrics.Meter.Name);
    }

    private sealed class ThrowingHook : IPostCommitHook
    {
        public ValueTask OnCommitAsync(CommitInfo commit, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("hook broke");
    }
}

internal class ListLogger : ILogger
{
    public List<(LogLevel Level, string Message, Exception? Exception)> Entries { get; } = [];
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries) Entries.Add((logLevel, formatter(state, exception), exception));
    }
}

internal sealed class ListLogger<T> : ListLogger, ILogger<T>;
