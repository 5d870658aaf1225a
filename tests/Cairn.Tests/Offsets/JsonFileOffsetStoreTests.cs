using System.Text;
using System.Text.Json;
using Cairn.Offsets;

using Cairn.Testing;

namespace Cairn.Tests.Offsets;

public sealed class JsonFileOffsetStoreTests : OffsetStoreContractTests
{
    private readonly TempDirectory _dir = new();
    private string FilePath => _dir.File("state/offsets.json");

    protected override async Task<IOffsetStore> CreateStoreAsync() => await JsonFileOffsetStore.OpenAsync(FilePath);

    protected override async Task<IOffsetStore?> ReopenAsync() => await JsonFileOffsetStore.OpenAsync(FilePath);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task The_file_is_readable_json_with_a_format_header()
    {
        await Store.CommitAsync("orders/1", Offset.Sequence(5));
        await Store.CommitAsync("orders/0", Offset.Earliest);
        using var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(FilePath));
        Assert.Equal("cairn-offsets", doc.RootElement.GetProperty("format").GetString());
        Assert.Equal(1, doc.RootElement.GetProperty("version").GetInt32());
        var offsets = doc.RootElement.GetProperty("offsets");
        Assert.Equal("seq:5", offsets.GetProperty("orders/1").GetString());
        Assert.Equal(["orders/0", "orders/1"], offsets.EnumerateObject().Select(p => p.Name));
        Assert.False(File.Exists(FilePath + ".tmp"));
    }

    [Fact]
    public async Task A_missing_file_is_an_empty_store_and_nothing_is_written_until_a_commit()
    {
        await using var store = await JsonFileOffsetStore.OpenAsync(_dir.File("other/none.json"));
        Assert.Empty(await store.GetAllAsync());
        Assert.False(File.Exists(_dir.File("other/none.json")));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("{\"format\":\"cairn-offsets\",\"version\":1,\"offsets\":{\"a\":\"seq:1\"", "not valid JSON")]
    [InlineData("[]", "not a JSON object")]
    [InlineData("{\"offsets\":{}}", "not a cairn-offsets file")]
    [InlineData("{\"format\":\"cairn-offsets\",\"version\":2,\"offsets\":{}}", "version 2")]
    [InlineData("{\"format\":\"cairn-offsets\",\"version\":1}", "no \"offsets\"")]
    [InlineData("{\"format\":\"cairn-offsets\",\"version\":1,\"offsets\":{\"a\":\"seq:-1\"}}", "'seq:-1' is not an offset")]
    [InlineData("{\"format\":\"cairn-offsets\",\"version\":1,\"offsets\":{\"a\":42}}", "not a string")]
    [InlineData("{\"format\":\"cairn-offsets\",\"version\":1,\"offsets\":{\"a\":\"seq:1\",\"a\":\"seq:2\"}}", "appears twice")]
    public async Task A_corrupt_file_is_reported_naming_the_file_never_read_as_empty(string content, string reason)
    {
        var path = _dir.File("corrupt.json");
        await File.WriteAllTextAsync(path, content);
        var ex = await Assert.ThrowsAsync<OffsetSerializationException>(() => JsonFileOffsetStore.OpenAsync(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains(reason, ex.Message);
        Assert.Equal(path, ex.Location);

        // Lazily opened: the first operation reports it, and so does every later one; nothing is overwritten.
        await using var lazy = new JsonFileOffsetStore(path);
        await Assert.ThrowsAsync<OffsetSerializationException>(async () => await lazy.GetAsync("a"));
        await Assert.ThrowsAsync<OffsetSerializationException>(async () => await lazy.CommitAsync("a", Offset.Sequence(1)));
        Assert.Equal(content, await File.ReadAllTextAsync(path));
    }

    [Fact]
    public async Task A_leftover_temp_file_from_a_crash_is_ignored_and_the_last_complete_file_wins()
    {
        await Store.CommitAsync("orders/0", Offset.Sequence(10));
        // A crash after writing part of the next version to the temp file, before the rename.
        await File.WriteAllTextAsync(FilePath + ".tmp", "{\"format\":\"cairn-offsets\",\"version\":1,\"offs");
        await using var reopened = await JsonFileOffsetStore.OpenAsync(FilePath);
        Assert.Equal(Offset.Sequence(10), await reopened.GetAsync("orders/0"));
        await reopened.CommitAsync("orders/0", Offset.Sequence(11));
        Assert.Equal(Offset.Sequence(11), await (await JsonFileOffsetStore.OpenAsync(FilePath)).GetAsync("orders/0"));
    }

    [Fact]
    public async Task A_failed_write_reports_an_io_error_naming_the_source_and_keeps_the_old_state()
    {
        var blocked = _dir.File("blocked");
        Directory.CreateDirectory(blocked);
        var path = Path.Combine(blocked, "offsets.json");
        await using var store = await JsonFileOffsetStore.OpenAsync(path);
        await store.CommitAsync("s", Offset.Sequence(1));
        // The temp file's name is taken by a directory: the write cannot happen.
        Directory.CreateDirectory(path + ".tmp");
        var ex = await Assert.ThrowsAsync<OffsetStoreIOException>(async () => await store.CommitAsync("s", Offset.Sequence(2)));
        Assert.Equal("s", ex.SourceName);
        Assert.Contains("'s'", ex.Message);
        Assert.NotNull(ex.InnerException);
        Assert.Equal(Offset.Sequence(1), await store.GetAsync("s"));
        Directory.Delete(path + ".tmp");
        await store.CommitAsync("s", Offset.Sequence(3));
        Assert.Equal(Offset.Sequence(3), await store.GetAsync("s"));
    }

    [Fact]
    public async Task Concurrent_commits_are_grouped_into_fewer_writes()
    {
        // Not a strict promise, but 200 concurrent commits should never need 200 fsynced writes in sequence.
        await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Store.CommitAsync($"s/{i}", Offset.Sequence(i)).AsTask()));
        var all = await Store.GetAllAsync();
        Assert.Equal(200, all.Count);
        await using var reopened = await JsonFileOffsetStore.OpenAsync(FilePath);
        Assert.Equal(200, (await reopened.GetAllAsync()).Count);
    }

    [Fact]
    public async Task A_process_killed_during_writes_leaves_the_old_or_the_new_content()
    {
        var probe = await ExampleApps.GetDllAsync("OffsetsProbe");
        var path = _dir.File("crash/offsets.json");
        var random = new Random(1234);
        long lastSeen = 0;
        for (int round = 0; round < 6; round++)
        {
            await using var child = ChildProcess.StartDll(probe, ["json-commit-loop", path, "orders/0"]);
            await child.WaitForStdoutLineAsync(l => l.StartsWith("start ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            int target = random.Next(1, 150);
            await child.WaitForStdoutLineAsync(l => l.StartsWith("committed ", StringComparison.Ordinal) && long.Parse(l[10..]) >= lastSeen + target,
                TimeSpan.FromSeconds(60));
            await Task.Delay(random.Next(0, 5));
            await child.KillAsync();

            var acknowledged = child.StdoutLinesSnapshot().Where(l => l.StartsWith("committed ", StringComparison.Ordinal)).Select(l => long.Parse(l[10..])).Max();
            await using var store = await JsonFileOffsetStore.OpenAsync(path); // never corrupt
            var stored = (await store.GetAsync("orders/0"))!.Value.SequenceValue;
            // Every acknowledged commit is there; at most the one in flight at the kill went further.
            Assert.InRange(stored, acknowledged, acknowledged + 1);
            lastSeen = stored;
        }
    }
}
