using Cairn.Broker;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Tests.Offsets;
using Microsoft.Extensions.Logging;

namespace Cairn.Tests.Groups.Store;

/// <summary>
/// The SQLite group store's start-up check: lost commits (a truncated or deleted write-ahead log, a missing database) and
/// a damaged file are reported and refuse the start (or, with AcceptLoss, start flagged); crashes with an intact log,
/// clean restarts and deletions raise nothing. A crash is simulated by copying the files of a store that is never
/// disposed (what a SIGKILL leaves on disk) to a new directory, then damaging the copy.
/// </summary>
public sealed class SqliteGroupStoreIntegrityTests : IAsyncLifetime
{
    private const string Cluster = "c";
    private static readonly Guid TopicId = new("6d2b3b8e-4a1f-4f9e-9c59-1b0f0d5d9a01");
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-groups-integrity-").FullName;
    private readonly List<IAsyncDisposable> _stores = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            try { await store.DisposeAsync(); } catch (Exception) { /* a store whose start failed may fail again */ }
        }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private SqliteGroupStore Create(string path, ILogger? logger = null, bool acceptLoss = false)
    {
        var store = new SqliteGroupStore(Cluster, path, logger ?? new ListLogger(),
            new SqliteGroupStoreOptions { AcceptLoss = acceptLoss, WriteRecordInterval = TimeSpan.FromHours(1) });
        _stores.Add(store);
        return store;
    }

    private string NewPath() => Path.Combine(_dir, Guid.NewGuid().ToString("N"), SqliteGroupStore.DefaultFileName);

    private static IReadOnlyList<GroupOffsetCommit> Commit(string group, int partition, long offset) =>
        [new(group, [new CommittedOffset("t", TopicId, partition, offset, -1, "m", DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000))])];

    /// <summary>A store with <paramref name="commits"/> acknowledged commits (one transaction each), the record refreshed.</summary>
    private async Task<SqliteGroupStore> CommittedAsync(string path, int commits)
    {
        var store = Create(path);
        await store.InitializeAsync();
        for (var i = 0; i < commits; i++) await store.CommitOffsetsAsync(Commit("g", i % 8, i));
        store.RefreshWriteRecord();
        return store;
    }

    /// <summary>What a SIGKILL leaves: the files as they are now, copied to a new directory; <paramref name="damageWal"/> then edits the copy's log.</summary>
    private string CrashCopy(string path, Action<string>? damageWal = null)
    {
        var target = NewPath();
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        foreach (var suffix in new[] { "", "-wal", SqliteWriteRecord.Suffix })
        {
            if (File.Exists(path + suffix)) File.Copy(path + suffix, target + suffix);
        }
        Assert.True(File.Exists(target + "-wal"), "the crashed store should have left its write-ahead log");
        damageWal?.Invoke(target + "-wal");
        return target;
    }

    private static void Truncate(string file, long length)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Write);
        stream.SetLength(length);
    }

    [Fact]
    public async Task A_wal_truncated_to_zero_after_a_crash_is_reported_and_the_start_refused()
    {
        var path = NewPath();
        var crashed = await CommittedAsync(path, 50);
        var copy = CrashCopy(path, wal => Truncate(wal, 0));

        var logger = new ListLogger();
        var error = await Assert.ThrowsAsync<GroupStoreIntegrityException>(() => Create(copy, logger).InitializeAsync());
        Assert.Equal(GroupStoreProblemKind.WritesLost, error.Problem.Kind);
        Assert.Contains("offset.store.accept.loss=true", error.Message);
        var logged = Assert.Single(logger.Entries, e => e.Level == LogLevel.Error).Message;
        var recorded = crashed.WriteSequence;
        Assert.Contains(copy, logged);
        Assert.Contains($"recorded {recorded} as durable", logged);
        Assert.Matches(@"write sequence is \d+,", logged);
        Assert.Contains("cairn offsets import", logged);
        // The refused start changed nothing: the record still holds the sequence to compare with.
        Assert.Equal(recorded, SqliteWriteRecord.Read(copy + SqliteWriteRecord.Suffix)!.Sequence);
    }

    [Fact]
    public async Task A_wal_truncated_to_a_partial_frame_is_reported()
    {
        var path = NewPath();
        await CommittedAsync(path, 50);
        // The 32-byte log header and half of the first frame (24-byte frame header + a 4096-byte page).
        var copy = CrashCopy(path, wal => Truncate(wal, 32 + 24 + 2048));

        var error = await Assert.ThrowsAsync<GroupStoreIntegrityException>(() => Create(copy).InitializeAsync());
        Assert.Equal(GroupStoreProblemKind.WritesLost, error.Problem.Kind);
    }

    [Fact]
    public async Task A_deleted_database_with_its_record_left_is_reported()
    {
        var path = NewPath();
        var store = await CommittedAsync(path, 5);
        await store.DisposeAsync();
        File.Delete(path);

        var error = await Assert.ThrowsAsync<GroupStoreIntegrityException>(() => Create(path).InitializeAsync());
        Assert.Equal(GroupStoreProblemKind.WritesLost, error.Problem.Kind);
        Assert.Contains("did not exist", error.Problem.Message);
    }

    [Fact]
    public async Task Accepting_the_loss_starts_flagged_and_makes_the_current_state_the_new_baseline()
    {
        var path = NewPath();
        await CommittedAsync(path, 20);
        var copy = CrashCopy(path, wal => Truncate(wal, 0));

        var logger = new ListLogger();
        var accepted = Create(copy, logger, acceptLoss: true);
        await accepted.InitializeAsync();
        Assert.Equal(GroupStoreProblemKind.WritesLost, accepted.IntegrityProblem?.Kind);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("Starting anyway"));
        await accepted.CommitOffsetsAsync(Commit("g", 0, 7));
        await accepted.DisposeAsync();

        var next = Create(copy);
        await next.InitializeAsync(); // no alarm: the loss was accepted and recorded
        Assert.Null(next.IntegrityProblem);
        Assert.Equal(7, Assert.Single((await next.GetAllOffsetsAsync())["g"]).Offset);
    }

    [Fact]
    public async Task A_crash_with_an_intact_wal_keeps_every_offset_and_raises_nothing()
    {
        var path = NewPath();
        var crashed = await CommittedAsync(path, 40);
        await crashed.CommitOffsetsAsync(Commit("g", 0, 1000)); // after the last record refresh, like a SIGKILL right after a commit
        var copy = CrashCopy(path);

        var logger = new ListLogger();
        var store = Create(copy, logger);
        await store.InitializeAsync();
        Assert.Null(store.IntegrityProblem);
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Contains(logger.Entries, e => e.Message.Contains("quick_check passed"));
        var offsets = (await store.GetAllOffsetsAsync())["g"].ToDictionary(o => o.Partition, o => o.Offset);
        Assert.Equal(1000, offsets[0]);
        for (var p = 1; p < 8; p++) Assert.Equal(32 + p, offsets[p]); // the last of commits 0..39 to partition p
        Assert.Equal(crashed.WriteSequence, store.WriteSequence);
    }

    [Fact]
    public async Task A_clean_stop_records_a_clean_shutdown_and_the_next_start_checks_nothing()
    {
        var path = NewPath();
        var store = await CommittedAsync(path, 10);
        var sequence = store.WriteSequence;
        await store.DisposeAsync();
        Assert.False(File.Exists(path + "-wal"), "a clean close checkpoints and removes the write-ahead log");
        var record = SqliteWriteRecord.Read(path + SqliteWriteRecord.Suffix)!;
        Assert.True(record.Clean);
        Assert.Equal(sequence, record.Sequence);

        var logger = new ListLogger();
        var next = Create(path, logger);
        await next.InitializeAsync();
        Assert.Null(next.IntegrityProblem);
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning || e.Message.Contains("quick_check"));
        Assert.False(SqliteWriteRecord.Read(path + SqliteWriteRecord.Suffix)!.Clean); // running: a crash from now on is unclean
    }

    [Fact]
    public async Task Deletions_raise_the_sequence_and_no_alarm()
    {
        var path = NewPath();
        var store = await CommittedAsync(path, 16);
        await store.SaveGroupAsync(new StoredGroup("g", "consumer", "range", 1, null, DateTimeOffset.UnixEpoch, []));
        await store.CommitOffsetsAsync(Commit("other", 0, 5));
        var before = store.WriteSequence;
        await store.DeleteOffsetsAsync("g", [("t", 0), ("t", 1)]); // OffsetDelete, offset expiry
        await store.DeleteTopicOffsetsAsync("t");                  // topic deleted
        await store.DeleteGroupAsync("g");                         // DeleteGroups
        Assert.Equal(before + 3, store.WriteSequence);
        store.RefreshWriteRecord();

        var afterCrash = Create(CrashCopy(path));
        await afterCrash.InitializeAsync();
        Assert.Null(afterCrash.IntegrityProblem);
        Assert.Empty(await afterCrash.GetAllOffsetsAsync());

        await store.DisposeAsync();
        var afterStop = Create(path);
        await afterStop.InitializeAsync();
        Assert.Null(afterStop.IntegrityProblem);
    }

    [Fact]
    public async Task A_corrupted_page_fails_quick_check_on_an_unclean_start()
    {
        var path = NewPath();
        var store = Create(path);
        await store.InitializeAsync();
        // Enough rows for a multi-page table; one transaction, then a clean close puts every page in the main file.
        await store.CommitOffsetsAsync([new GroupOffsetCommit("g", Enumerable.Range(0, 2000)
            .Select(p => new CommittedOffset("t", TopicId, p, p, -1, new string('x', 50), DateTimeOffset.UnixEpoch)).ToList())]);
        await store.DisposeAsync();
        var pages = new FileInfo(path).Length / 4096;
        Assert.True(pages > 10, $"{pages} pages");
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            file.Position = pages / 2 * 4096;
            file.Write(Enumerable.Range(0, 4096).Select(i => (byte)(i * 131 + 7)).ToArray());
        }
        // The crash that went with the damage: the record says the store was not closed cleanly.
        var record = path + SqliteWriteRecord.Suffix;
        File.WriteAllText(record, File.ReadAllText(record).Replace("clean=true", "clean=false"));

        var logger = new ListLogger();
        var error = await Assert.ThrowsAsync<GroupStoreIntegrityException>(() => Create(path, logger).InitializeAsync());
        Assert.Equal(GroupStoreProblemKind.Corrupt, error.Problem.Kind);
        var logged = Assert.Single(logger.Entries, e => e.Level == LogLevel.Error).Message;
        Assert.Contains(path, logged);
        Assert.Contains("PRAGMA quick_check failed", logged);
        Assert.Contains("cairn offsets export", logged);
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_is_reported_as_damaged()
    {
        var path = NewPath();
        var store = await CommittedAsync(path, 3);
        await store.DisposeAsync();
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write)) file.Write(new byte[100]); // the header
        File.Delete(path + SqliteWriteRecord.Suffix); // and no record: an unclean start

        var error = await Assert.ThrowsAsync<GroupStoreIntegrityException>(() => Create(path).InitializeAsync());
        Assert.Equal(GroupStoreProblemKind.Corrupt, error.Problem.Kind);
    }

    [Fact]
    public void The_accept_loss_setting_is_parsed()
    {
        Assert.False(BrokerOptions.FromSettings([]).OffsetStoreAcceptLoss);
        Assert.True(BrokerOptions.FromSettings([new("offset-store-accept-loss", "true")]).OffsetStoreAcceptLoss);
        Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new("offset.store.accept.loss", "maybe")]));
    }
}
