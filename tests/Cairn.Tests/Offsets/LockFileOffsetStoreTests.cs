using System.Diagnostics;
using System.Text.Json;
using Cairn.Offsets;

using Cairn.Testing;

namespace Cairn.Tests.Offsets;

public sealed class LockFileOffsetStoreTests : OffsetStoreContractTests
{
    private readonly TempDirectory _dir = new();

    protected override async Task<IOffsetStore> CreateStoreAsync() => await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a");

    protected override async Task<IOffsetStore?> ReopenAsync() => await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a");

    private LockFileOffsetStore LockStore => (LockFileOffsetStore)Store;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Each_consumer_has_its_own_directory_and_each_source_its_own_file()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        await Store.CommitAsync("Orders/0", Offset.Sequence(2));
        await using var other = await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-b");
        Assert.Null(await other.GetAsync("orders/0"));
        Assert.NotEqual(LockStore.DirectoryPath, other.DirectoryPath);

        var files = Directory.GetFiles(LockStore.DirectoryPath, "*.offset").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["%4Frders%2F0.offset", "orders%2F0.offset"], files);
        using var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(LockStore.GetOffsetFilePath("orders/0")));
        Assert.Equal("orders/0", doc.RootElement.GetProperty("source").GetString());
        Assert.Equal("seq:1", doc.RootElement.GetProperty("offset").GetString());
    }

    [Fact]
    public async Task File_names_are_safe_for_hostile_and_long_source_names()
    {
        string[] sources = ["../../escape", "/abs/path", "a\\b", "nul\0byte", ".", "..", new string('é', 400), new string('é', 400) + "x"];
        foreach (var s in sources) await Store.CommitAsync(s, Offset.Sequence(s.Length));
        foreach (var file in Directory.GetFiles(LockStore.DirectoryPath))
        {
            Assert.Equal(LockStore.DirectoryPath, Path.GetDirectoryName(file));
            Assert.True(Path.GetFileName(file).Length <= 200, file);
        }
        Assert.Empty(Directory.GetFiles(_dir.Path)); // nothing escaped the consumer directory
        await using var reopened = await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a");
        foreach (var s in sources) Assert.Equal(Offset.Sequence(s.Length), await reopened.GetAsync(s));
    }

    [Fact]
    public async Task An_unparseable_file_fails_the_open_naming_the_file()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        var path = LockStore.GetOffsetFilePath("orders/0");
        await File.WriteAllTextAsync(path, "{\"format\":\"cairn-offsets\",\"version\":1,\"source\":\"orders/0\",\"offset\":\"seq:x\"}");
        var ex = await Assert.ThrowsAsync<OffsetSerializationException>(() => LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a"));
        Assert.Equal(path, ex.Location);
        Assert.Contains(path, ex.Message);
        Assert.Equal("orders/0", ex.SourceName);

        await File.WriteAllTextAsync(path, "garbage");
        ex = await Assert.ThrowsAsync<OffsetSerializationException>(() => LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a"));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public async Task A_file_holding_another_source_than_its_name_says_is_reported()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(1));
        File.Copy(LockStore.GetOffsetFilePath("orders/0"), LockStore.GetOffsetFilePath("orders/1"));
        var ex = await Assert.ThrowsAsync<OffsetSerializationException>(() => LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a"));
        Assert.Contains(LockStore.GetOffsetFilePath("orders/1"), ex.Message);
    }

    [Fact]
    public async Task A_lock_held_elsewhere_times_out_with_a_clear_exception()
    {
        await using var store = await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a",
            new LockFileOffsetStoreOptions { LockTimeout = TimeSpan.FromMilliseconds(300) });
        var lockPath = store.GetLockFilePath("orders/0");
        var clock = Stopwatch.StartNew();
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var ex = await Assert.ThrowsAsync<OffsetLockTimeoutException>(async () => await store.CommitAsync("orders/0", Offset.Sequence(1)));
            Assert.Equal(lockPath, ex.LockPath);
            Assert.Equal("orders/0", ex.SourceName);
            Assert.Equal(TimeSpan.FromMilliseconds(300), ex.Timeout);
            Assert.Contains(lockPath, ex.Message);
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), clock.Elapsed.ToString());
            // Other sources are not affected.
            await store.CommitAsync("orders/1", Offset.Sequence(1));
        }
        Assert.Null(await store.GetAsync("orders/0"));
        await store.CommitAsync("orders/0", Offset.Sequence(2)); // free again
        Assert.Equal(Offset.Sequence(2), await store.GetAsync("orders/0"));
    }

    [Fact]
    public async Task A_writer_waits_for_a_lock_released_before_the_timeout()
    {
        var lockPath = LockStore.GetLockFilePath("orders/0");
        var held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var commit = Store.CommitAsync("orders/0", Offset.Sequence(1)).AsTask();
        await Task.Delay(150);
        Assert.False(commit.IsCompleted);
        held.Dispose();
        await commit.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Offset.Sequence(1), await Store.GetAsync("orders/0"));
    }

    [Fact]
    public async Task A_lock_held_by_another_process_blocks_writes_until_it_is_released()
    {
        var probe = await ExampleApps.GetDllAsync("OffsetsProbe");
        await using var child = ChildProcess.StartDll(probe, ["lock-hold", _dir.Path, "pipeline-a", "orders/0"]);
        await child.WaitForStdoutLineAsync(l => l == "locked", TimeSpan.FromSeconds(60));
        await using var store = await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a",
            new LockFileOffsetStoreOptions { LockTimeout = TimeSpan.FromMilliseconds(200) });
        await Assert.ThrowsAsync<OffsetLockTimeoutException>(async () => await store.CommitAsync("orders/0", Offset.Sequence(1)));
        child.StandardInput.Close();
        await child.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await store.CommitAsync("orders/0", Offset.Sequence(1));
    }

    [Fact]
    public async Task Two_processes_updating_one_directory_never_lose_an_update()
    {
        var probe = await ExampleApps.GetDllAsync("OffsetsProbe");
        const int each = 150;
        await using var a = ChildProcess.StartDll(probe, ["lock-increment", _dir.Path, "shared", "counter/0", each.ToString()]);
        await using var b = ChildProcess.StartDll(probe, ["lock-increment", _dir.Path, "shared", "counter/0", each.ToString()]);
        // This process joins in too.
        await using var mine = await LockFileOffsetStore.OpenAsync(_dir.Path, "shared");
        for (int i = 0; i < each; i++)
            await mine.UpdateAsync("counter/0", current => Offset.Sequence((current?.SequenceValue ?? 0) + 1));
        await a.WaitForExitAsync(TimeSpan.FromMinutes(3));
        await b.WaitForExitAsync(TimeSpan.FromMinutes(3));
        Assert.True(a.ExitCode == 0, a.Describe());
        Assert.True(b.ExitCode == 0, b.Describe());

        await using var check = await LockFileOffsetStore.OpenAsync(_dir.Path, "shared");
        Assert.Equal(Offset.Sequence(3 * each), await check.GetAsync("counter/0"));
    }

    [Fact]
    public async Task Two_processes_committing_to_shared_and_own_sources_leave_every_file_valid()
    {
        var probe = await ExampleApps.GetDllAsync("OffsetsProbe");
        const int count = 200;
        await using var a = ChildProcess.StartDll(probe, ["lock-commit", _dir.Path, "shared", "a", count.ToString()]);
        await using var b = ChildProcess.StartDll(probe, ["lock-commit", _dir.Path, "shared", "b", count.ToString()]);
        await a.WaitForExitAsync(TimeSpan.FromMinutes(3));
        await b.WaitForExitAsync(TimeSpan.FromMinutes(3));
        Assert.True(a.ExitCode == 0, a.Describe());
        Assert.True(b.ExitCode == 0, b.Describe());

        await using var check = await LockFileOffsetStore.OpenAsync(_dir.Path, "shared"); // every file parses
        var all = await check.GetAllAsync();
        Assert.Equal(12, all.Count);
        for (int p = 0; p < 4; p++)
        {
            long last = Enumerable.Range(1, count).Where(i => i % 4 == p).Max();
            Assert.Equal(Offset.Sequence(last), all[$"a/{p}"]);
            Assert.Equal(Offset.Sequence(last), all[$"b/{p}"]);
            Assert.Equal(Offset.Sequence(last), all[$"shared/{p}"]);
        }
    }

    [Fact]
    public async Task Commits_of_another_instance_are_seen_after_a_reload_or_with_read_through()
    {
        await using var other = await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a");
        await using var readThrough = await LockFileOffsetStore.OpenAsync(_dir.Path, "pipeline-a", new LockFileOffsetStoreOptions { ReadThrough = true });
        await other.CommitAsync("orders/0", Offset.Sequence(9));

        Assert.Null(await Store.GetAsync("orders/0")); // the cache loaded on open
        Assert.Equal(Offset.Sequence(9), await readThrough.GetAsync("orders/0"));
        await LockStore.ReloadAsync();
        Assert.Equal(Offset.Sequence(9), await Store.GetAsync("orders/0"));

        await other.ClearAsync("orders/0");
        Assert.Null(await readThrough.GetAsync("orders/0"));
        Assert.Empty(await readThrough.GetAllAsync());
    }
}
