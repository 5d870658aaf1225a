using Cairn.Offsets;

namespace Cairn.Tests.Offsets;

/// <summary>
/// The behaviour every <see cref="IOffsetStore"/> shares. Each store's test class derives from this and says how to
/// make a fresh, empty store, and (for durable stores) how to open a second instance over the same storage.
/// </summary>
public abstract class OffsetStoreContractTests : IAsyncLifetime
{
    private IOffsetStore? _store;

    protected IOffsetStore Store => _store ?? throw new InvalidOperationException("not initialized");

    /// <summary>A fresh, empty store.</summary>
    protected abstract Task<IOffsetStore> CreateStoreAsync();

    /// <summary>Another instance over the same storage as <see cref="Store"/>; null for stores that keep nothing.</summary>
    protected abstract Task<IOffsetStore?> ReopenAsync();

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public virtual async Task DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
    }

    public static TheoryData<string> Offsets() =>
    [
        "earliest",
        "latest",
        "seq:0",
        "seq:42",
        $"seq:{long.MaxValue}",
        "ts:2026-11-20T10:00:00.0000000+00:00",
        "custom:",
        "custom:lsn=0/16B3748; \"quoted\" \\ backslash\nnew line ü 漢字 🙂",
    ];

    public static TheoryData<string> SourceNames() =>
    [
        "orders/3",
        "a",
        "A",
        "with space",
        "../../etc/passwd",
        ".hidden",
        "CON",
        "ü/漢字/🙂",
        "quote\"and'apostrophe;--",
        "%2F",
        new string('x', 600) + "/7",
    ];

    [Fact]
    public async Task Get_returns_null_when_nothing_is_stored()
    {
        Assert.Null(await Store.GetAsync("orders/0"));
        Assert.Empty(await Store.GetAllAsync());
    }

    [Fact]
    public async Task Commit_then_get_returns_the_offset()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(42));
        Assert.Equal(Offset.Sequence(42), await Store.GetAsync("orders/0"));
        Assert.Null(await Store.GetAsync("orders/1"));
    }

    [Fact]
    public async Task Commit_overwrites_the_previous_offset_even_backwards()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(10));
        await Store.CommitAsync("orders/0", Offset.Sequence(20));
        Assert.Equal(Offset.Sequence(20), await Store.GetAsync("orders/0"));
        await Store.CommitAsync("orders/0", Offset.Sequence(5));
        Assert.Equal(Offset.Sequence(5), await Store.GetAsync("orders/0"));
        await Store.CommitAsync("orders/0", Offset.Latest);
        Assert.Equal(Offset.Latest, await Store.GetAsync("orders/0"));
    }

    [Theory]
    [MemberData(nameof(Offsets))]
    public async Task Every_kind_of_offset_round_trips(string text)
    {
        var offset = Offset.Parse(text);
        await Store.CommitAsync("s", offset);
        Assert.Equal(offset, await Store.GetAsync("s"));
        await using var reopened = await ReopenAsync();
        if (reopened is not null) Assert.Equal(offset, await reopened.GetAsync("s"));
    }

    [Theory]
    [MemberData(nameof(SourceNames))]
    public async Task Any_source_name_round_trips(string source)
    {
        await Store.CommitAsync(source, Offset.Sequence(7));
        Assert.Equal(Offset.Sequence(7), await Store.GetAsync(source));
        Assert.Equal([source], (await Store.GetAllAsync()).Keys);
        await using var reopened = await ReopenAsync();
        if (reopened is not null) Assert.Equal(Offset.Sequence(7), await reopened.GetAsync(source));
        await Store.ClearAsync(source);
        Assert.Null(await Store.GetAsync(source));
    }

    [Fact]
    public async Task Source_names_differing_only_in_case_are_distinct()
    {
        await Store.CommitAsync("Orders/1", Offset.Sequence(1));
        await Store.CommitAsync("orders/1", Offset.Sequence(2));
        await Store.CommitAsync("ORDERS/1", Offset.Sequence(3));
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("Orders/1"));
        Assert.Equal(Offset.Sequence(2), await Store.GetAsync("orders/1"));
        Assert.Equal(Offset.Sequence(3), await Store.GetAsync("ORDERS/1"));
        Assert.Equal(3, (await Store.GetAllAsync()).Count);
    }

    [Fact]
    public async Task GetAll_returns_every_source()
    {
        var expected = new Dictionary<string, Offset>
        {
            ["orders/0"] = Offset.Sequence(1),
            ["orders/1"] = Offset.Sequence(2),
            ["payments/0"] = Offset.Timestamp(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)),
            ["cdc"] = Offset.Custom("lsn:0/1"),
        };
        foreach (var (source, offset) in expected) await Store.CommitAsync(source, offset);
        var all = await Store.GetAllAsync();
        Assert.Equal(expected.OrderBy(e => e.Key, StringComparer.Ordinal), all.OrderBy(e => e.Key, StringComparer.Ordinal));
    }

    [Fact]
    public async Task GetAll_is_a_snapshot_unaffected_by_later_commits()
    {
        await Store.CommitAsync("a", Offset.Sequence(1));
        var all = await Store.GetAllAsync();
        await Store.CommitAsync("a", Offset.Sequence(2));
        await Store.CommitAsync("b", Offset.Sequence(1));
        Assert.Equal(Offset.Sequence(1), all["a"]);
        Assert.False(all.ContainsKey("b"));
    }

    [Fact]
    public async Task Clear_forgets_one_source()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        await Store.CommitAsync("orders/1", Offset.Sequence(2));
        await Store.ClearAsync("orders/0");
        Assert.Null(await Store.GetAsync("orders/0"));
        Assert.Equal(Offset.Sequence(2), await Store.GetAsync("orders/1"));
        Assert.Equal(["orders/1"], (await Store.GetAllAsync()).Keys);
        await Store.ClearAsync("never-committed");
        await Store.CommitAsync("orders/0", Offset.Sequence(9));
        Assert.Equal(Offset.Sequence(9), await Store.GetAsync("orders/0"));
    }

    [Fact]
    public async Task ClearAll_forgets_every_source()
    {
        for (int i = 0; i < 5; i++) await Store.CommitAsync($"orders/{i}", Offset.Sequence(i));
        await Store.ClearAllAsync();
        Assert.Empty(await Store.GetAllAsync());
        Assert.Null(await Store.GetAsync("orders/3"));
        await Store.ClearAllAsync();
        await Store.CommitAsync("orders/3", Offset.Sequence(1));
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("orders/3"));
    }

    [Fact]
    public async Task Commits_and_clears_are_durable_across_instances()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(5));
        await Store.CommitAsync("orders/1", Offset.Sequence(6));
        await Store.ClearAsync("orders/1");
        await using var reopened = await ReopenAsync();
        if (reopened is null) return; // nothing is kept
        Assert.Equal(Offset.Sequence(5), await reopened.GetAsync("orders/0"));
        Assert.Null(await reopened.GetAsync("orders/1"));
        Assert.Equal(["orders/0"], (await reopened.GetAllAsync()).Keys);
    }

    [Fact]
    public async Task Concurrent_commits_from_many_tasks_all_land()
    {
        const int tasks = 16, commitsEach = 25;
        await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            for (int i = 1; i <= commitsEach; i++)
            {
                await Store.CommitAsync($"own/{t}", Offset.Sequence(i));
                await Store.CommitAsync("shared/0", Offset.Sequence(t * 1000 + i));
            }
        })));
        var all = await Store.GetAllAsync();
        for (int t = 0; t < tasks; t++) Assert.Equal(Offset.Sequence(commitsEach), all[$"own/{t}"]);
        // The shared source holds one of the values committed last by some task.
        var shared = all["shared/0"].SequenceValue;
        Assert.Contains(shared, Enumerable.Range(0, tasks).Select(t => (long)(t * 1000 + commitsEach)));
        Assert.Equal(tasks + 1, all.Count);

        await using var reopened = await ReopenAsync();
        if (reopened is not null)
            Assert.Equal(all.OrderBy(e => e.Key, StringComparer.Ordinal), (await reopened.GetAllAsync()).OrderBy(e => e.Key, StringComparer.Ordinal));
    }

    [Fact]
    public async Task Concurrent_commits_clears_and_reads_do_not_fail()
    {
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            for (int i = 0; i < 20; i++)
            {
                var source = $"s/{(t + i) % 4}";
                switch (i % 4)
                {
                    case 0: await Store.ClearAsync(source); break;
                    case 1: await Store.GetAllAsync(); break;
                    case 2: await Store.GetAsync(source); break;
                    default: await Store.CommitAsync(source, Offset.Sequence(i)); break;
                }
            }
        })));
        await Store.ClearAllAsync();
        Assert.Empty(await Store.GetAllAsync());
    }

    [Fact]
    public async Task Empty_or_null_source_names_are_rejected()
    {
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await Store.CommitAsync("", Offset.Sequence(1)));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await Store.GetAsync(null!));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await Store.ClearAsync(""));
    }

    [Fact]
    public async Task A_cancelled_commit_throws_and_changes_nothing()
    {
        await Store.CommitAsync("s", Offset.Sequence(1));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Store.CommitAsync("s", Offset.Sequence(2), cancelled.Token));
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("s"));
    }

    [Fact]
    public async Task A_disposed_store_refuses_work()
    {
        await Store.CommitAsync("s", Offset.Sequence(1));
        await Store.DisposeAsync();
        await Store.DisposeAsync(); // twice is fine
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.CommitAsync("s", Offset.Sequence(2)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await Store.GetAsync("s"));
    }
}
