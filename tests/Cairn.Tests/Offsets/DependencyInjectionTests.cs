using Cairn.Offsets;
using Cairn.Tests.Groups;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Cairn.Tests.Offsets;

public sealed class DependencyInjectionTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    [Fact]
    public async Task Registers_an_instrumented_store_and_a_default_tracker()
    {
        var hook = new RecordingCommitHook();
        var services = new ServiceCollection();
        services.AddCairnOffsets(o => o.UseInMemory().AddHook(hook).ConfigureTracker(t => t.CommitStrategy = CommitStrategy.Manual));
        await using var provider = services.BuildServiceProvider();

        var store = provider.GetRequiredService<IOffsetStore>();
        var instrumented = Assert.IsType<InstrumentedOffsetStore>(store);
        Assert.Same(provider.GetRequiredService<InMemoryOffsetStore>(), instrumented.Inner);
        Assert.Equal("in-memory", instrumented.StoreName);

        var tracker = provider.GetRequiredService<OffsetTracker>();
        Assert.Same(tracker, provider.GetRequiredService<OffsetTracker>());
        Assert.Same(store, tracker.Store);
        Assert.Equal(CommitStrategy.Manual, tracker.CommitStrategy);
        await tracker.RecordAsync("a", Offset.Sequence(1));
        await tracker.CommitAllAsync();
        Assert.Single(hook.Commits);
    }

    [Fact]
    public async Task Named_trackers_have_their_own_options()
    {
        var services = new ServiceCollection();
        services.AddCairnOffsets(o => o
            .UseInMemory()
            .ConfigureTracker("strict", t => t.ResetPolicy = OffsetResetPolicy.None)
            .ConfigureTracker("batched", t => t.CommitStrategy = CommitStrategy.EveryN(100)));
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IOffsetTrackerFactory>();
        Assert.Same(factory.Get("strict"), factory.Get("strict"));
        Assert.Equal(OffsetResetPolicy.None, factory.Get("strict").ResetPolicy);
        Assert.Equal(CommitStrategy.EveryN(100), factory.Get("batched").CommitStrategy);
        Assert.Equal(CommitStrategy.Auto, provider.GetRequiredService<OffsetTracker>().CommitStrategy);
    }

    [Fact]
    public async Task Disposing_the_container_flushes_trackers_then_closes_the_store()
    {
        var path = _dir.File("offsets.json");
        var services = new ServiceCollection();
        services.AddCairnOffsets(o => o.UseJsonFile(path).ConfigureTracker(t => t.CommitStrategy = CommitStrategy.Manual));
        await using (var provider = services.BuildServiceProvider())
        {
            await provider.GetRequiredService<OffsetTracker>().RecordAsync("a", Offset.Sequence(9));
            await provider.GetRequiredService<IOffsetTrackerFactory>().Get("other").RecordAsync("b", Offset.Sequence(3));
        }
        await using var check = await JsonFileOffsetStore.OpenAsync(path);
        Assert.Equal(Offset.Sequence(9), await check.GetAsync("a"));
        Assert.Equal(Offset.Sequence(3), await check.GetAsync("b"));
    }

    [Fact]
    public async Task Each_builtin_store_can_be_chosen()
    {
        async Task Check(Action<CairnOffsetsBuilder> use, Type expected)
        {
            var services = new ServiceCollection();
            services.AddCairnOffsets(use);
            await using var provider = services.BuildServiceProvider();
            var store = (InstrumentedOffsetStore)provider.GetRequiredService<IOffsetStore>();
            Assert.IsType(expected, store.Inner);
            await store.CommitAsync("s", Offset.Sequence(1));
            Assert.Equal(Offset.Sequence(1), await store.GetAsync("s"));
        }
        await Check(o => o.UseLockFiles(_dir.File("locks"), "app", l => l.LockTimeout = TimeSpan.FromSeconds(5)), typeof(LockFileOffsetStore));
        await Check(o => o.UseSqlite($"Data Source={_dir.File("o.db")}", s => s.ConsumerName = "app"), typeof(SqliteOffsetStore));
        await Check(o => o.UseJsonFile(_dir.File("o.json")), typeof(JsonFileOffsetStore));
        await Check(o => o.UseStore<InMemoryOffsetStore>(), typeof(InMemoryOffsetStore));
    }

    [Fact]
    public async Task UsePostgres_registers_the_postgres_store_without_connecting()
    {
        var services = new ServiceCollection();
        services.AddCairnOffsets(o => o.UsePostgres("Host=127.0.0.1;Port=1;Database=x", p => p.Schema = "offsets"));
        await using var provider = services.BuildServiceProvider();
        Assert.IsType<PostgresOffsetStore>(((InstrumentedOffsetStore)provider.GetRequiredService<IOffsetStore>()).Inner);
        Assert.NotNull(provider.GetRequiredService<PostgresOffsetStore>());
    }

    [Fact]
    public async Task UseStore_plugs_in_any_store_and_owns_it_unless_told_otherwise()
    {
        var custom = new DisposeCountingStore();
        var services = new ServiceCollection();
        services.AddCairnOffsets(o => o.UseStore(_ => custom, "kafka-group"));
        await using (var provider = services.BuildServiceProvider())
        {
            var store = (InstrumentedOffsetStore)provider.GetRequiredService<IOffsetStore>();
            Assert.Same(custom, store.Inner);
            Assert.Equal("kafka-group", store.StoreName);
        }
        Assert.Equal(1, custom.Disposals);

        var shared = new DisposeCountingStore();
        services = new ServiceCollection();
        services.AddCairnOffsets(o => o.UseStore(_ => shared, disposeStore: false));
        await using (var provider = services.BuildServiceProvider()) provider.GetRequiredService<IOffsetStore>();
        Assert.Equal(0, shared.Disposals);
    }

    [Fact]
    public async Task Uses_the_containers_time_provider_and_logging_hook()
    {
        var time = new ManualTimeProvider();
        var logger = new ListLogger<LoggingCommitHook>();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton<ILogger<LoggingCommitHook>>(logger);
        services.AddCairnOffsets(o => o.UseInMemory().AddLoggingHook(LogLevel.Warning)
            .ConfigureTracker(t => t.CommitStrategy = CommitStrategy.Interval(TimeSpan.FromSeconds(30))));
        await using var provider = services.BuildServiceProvider();
        var tracker = provider.GetRequiredService<OffsetTracker>();
        await tracker.RecordAsync("a", Offset.Sequence(1));
        Assert.Empty(logger.Entries);
        time.Advance(TimeSpan.FromSeconds(30));
        await OffsetTrackerTests.WaitUntilAsync(() => Task.FromResult(logger.Entries.Count == 1));
        Assert.Equal(LogLevel.Warning, logger.Entries[0].Level);
    }

    [Fact]
    public void Without_a_store_choice_resolution_explains_what_to_do()
    {
        var services = new ServiceCollection();
        services.AddCairnOffsets();
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IOffsetStore>());
        Assert.Contains("UseInMemory", ex.Message);
    }

    private sealed class DisposeCountingStore : IOffsetStore
    {
        private readonly InMemoryOffsetStore _inner = new();
        public int Disposals;
        public ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default) => _inner.GetAsync(source, cancellationToken);
        public ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default) => _inner.CommitAsync(source, offset, cancellationToken);
        public ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default) => _inner.GetAllAsync(cancellationToken);
        public ValueTask ClearAsync(string source, CancellationToken cancellationToken = default) => _inner.ClearAsync(source, cancellationToken);
        public ValueTask ClearAllAsync(CancellationToken cancellationToken = default) => _inner.ClearAllAsync(cancellationToken);
        public ValueTask DisposeAsync() { Interlocked.Increment(ref Disposals); return ValueTask.CompletedTask; }
    }
}
