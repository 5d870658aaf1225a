using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

/// <summary>Start-up never deletes data it cannot account for (issue 10).</summary>
public sealed class StartupSafetyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<LogManager> OpenAsync() => LogManager.OpenAsync(new StorageOptions { DataDirectory = _dir.Path, RunBackgroundTasks = false });

    private string TopicFile(string topic) => Path.Combine(_dir.Path, ".topics", topic + ".json");

    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    private static List<long> ReadAllBaseOffsets(PartitionLog p)
    {
        var bases = new List<long>();
        long offset = p.LogStartOffset;
        for (int i = 0; i < 10_000 && offset < p.HighWatermark; i++)
        {
            var r = p.Read(offset, 1 << 20);
            Assert.Equal(ErrorCode.None, r.Error);
            var batches = TestBatch.Split(r.Records.Bytes());
            Assert.NotEmpty(batches);
            foreach (var b in batches) bases.Add(b.Base);
            offset = batches[^1].Last + 1;
        }
        return bases;
    }

    private async Task<Guid> CreateWithDataAsync(string topic, int partitions, int batchesPerPartition)
    {
        await using var m = await OpenAsync();
        var t = m.CreateTopic(topic, partitions).Topic!;
        foreach (var p in t.Partitions)
            for (int i = 0; i < batchesPerPartition; i++) p.Append(TestBatch.Simple(5));
        return t.TopicId;
    }

    [Fact]
    public async Task Foreign_directories_with_partition_like_names_survive_byte_identical()
    {
        await CreateWithDataAsync("myapp", 1, 1);
        var foreign = Path.Combine(_dir.Path, "myapp-2");
        var unknown = Path.Combine(_dir.Path, "other-0");
        var empty = Path.Combine(_dir.Path, "nothing-3");
        Directory.CreateDirectory(foreign);
        Directory.CreateDirectory(unknown);
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(foreign, "app.log"), "x");
        File.WriteAllText(Path.Combine(unknown, "notes.txt"), "keep me");
        var before = Snapshot(foreign).Concat(Snapshot(unknown)).ToList();

        await using (var m = await OpenAsync())
        {
            Assert.True(m.TryGetTopic("myapp", out var t));
            Assert.Equal(1, t.PartitionCount);
            Assert.False(m.TryGetTopic("other", out _));
            // Growing the topic onto the foreign directory fails instead of wiping it.
            Assert.Equal(ErrorCode.KafkaStorageError, m.AddPartitions("myapp", 3).Error);
            Assert.Equal(ErrorCode.KafkaStorageError, m.CreateTopic("other", 1).Error);
        }
        Assert.Equal(before, Snapshot(foreign).Concat(Snapshot(unknown)).ToList());
        Assert.True(Directory.Exists(empty));
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("truncated")]
    [InlineData("garbage")]
    public async Task Missing_or_damaged_topic_metadata_is_rebuilt_from_partition_directories(string damage)
    {
        var id = await CreateWithDataAsync("t", 3, 4);
        Assert.True(File.Exists(Path.Combine(_dir.Path, "t-0", "partition.metadata")));
        switch (damage)
        {
            case "missing": File.Delete(TopicFile("t")); break;
            case "truncated": File.WriteAllBytes(TopicFile("t"), []); break;
            default: File.WriteAllText(TopicFile("t"), "{\"name\": \"t\", \"partit"); break;
        }

        for (int restart = 0; restart < 2; restart++)
        {
            await using var m = await OpenAsync();
            Assert.True(m.TryGetTopic("t", out var t));
            Assert.Equal(id, t.TopicId);
            Assert.Equal(3, t.PartitionCount);
            foreach (var p in t.Partitions)
                Assert.Equal([0L, 5, 10, 15], ReadAllBaseOffsets(p));
        }
        if (damage != "missing")
            Assert.Single(Directory.EnumerateFiles(Path.Combine(_dir.Path, ".topics"), "t.json.damaged-*"));
    }

    [Fact]
    public async Task Legacy_directories_without_identity_file_are_rebuilt_from_their_names()
    {
        await CreateWithDataAsync("old", 2, 2);
        foreach (var d in new[] { "old-0", "old-1" }) File.Delete(Path.Combine(_dir.Path, d, "partition.metadata"));
        File.Delete(TopicFile("old"));

        await using (var m = await OpenAsync())
        {
            Assert.True(m.TryGetTopic("old", out var t));
            Assert.Equal(2, t.PartitionCount);
            foreach (var p in t.Partitions) Assert.Equal([0L, 5], ReadAllBaseOffsets(p));
        }
        // The identity files are written back at start-up.
        Assert.True(File.Exists(Path.Combine(_dir.Path, "old-1", "partition.metadata")));
    }

    [Fact]
    public async Task Deleted_topic_stays_deleted_when_its_directories_survive_a_crash()
    {
        await CreateWithDataAsync("gone", 1, 1);
        // A crash between marking the directory and removing it: the deletion is finished, not undone.
        var dir = Path.Combine(_dir.Path, "gone-0");
        File.WriteAllText(Path.Combine(dir, "partition.deleted"), "deleted");
        File.Delete(TopicFile("gone"));
        await using (var m = await OpenAsync())
            Assert.False(m.TryGetTopic("gone", out _));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task Deletion_marker_without_deleted_metadata_keeps_the_data()
    {
        await CreateWithDataAsync("half", 1, 2);
        File.WriteAllText(Path.Combine(_dir.Path, "half-0", "partition.deleted"), "deleted");
        await using var m = await OpenAsync();
        Assert.True(m.TryGetTopic("half", out var t));
        Assert.Equal([0L, 5], ReadAllBaseOffsets(t.GetPartition(0)!));
    }

    [Fact]
    public void Atomic_write_replaces_the_file_and_leaves_no_temp_file()
    {
        var path = Path.Combine(_dir.Path, "x.json");
        FileIO.WriteAtomic(path, "one"u8);
        FileIO.WriteAtomic(path, "two"u8);
        Assert.Equal("two", File.ReadAllText(path));
        Assert.Single(Directory.EnumerateFiles(_dir.Path));
        if (!OperatingSystem.IsWindows()) Assert.Throws<IOException>(() => FileIO.FlushDirectory(Path.Combine(_dir.Path, "no-such-dir")));
    }
}

public sealed class SegmentGapTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<LogManager> OpenAsync() => LogManager.OpenAsync(new StorageOptions { DataDirectory = _dir.Path, RunBackgroundTasks = false });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_missing_older_segment_takes_only_that_partition_offline_and_deletes_nothing(bool cleanShutdown)
    {
        await using (var m = await OpenAsync())
        {
            foreach (var p in m.CreateTopic("t", 2).Topic!.Partitions)
                for (int s = 0; s < 4; s++)
                {
                    for (int i = 0; i < 3; i++) Assert.True(p.Append(TestBatch.Simple(10)).Succeeded);
                    p.Roll();
                }
            if (!cleanShutdown) m.GetPartition("t", 0)!.SimulateCrash();
        }
        var dir = Path.Combine(_dir.Path, "t-0");
        File.Delete(Path.Combine(dir, 30L.ToString("D20") + ".log"));
        var before = Directory.EnumerateFiles(dir).Select(Path.GetFileName).Where(n => n!.EndsWith(".log", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(4, before.Count); // 0, 60, 90 and the active 120

        for (int restart = 0; restart < 2; restart++)
        {
            await using var m = await OpenAsync();
            Assert.True(m.TryGetTopic("t", out var t));
            var broken = t.GetPartition(0)!;
            Assert.True(broken.IsOffline);
            Assert.Same(broken, Assert.Single(m.OfflinePartitions));
            Assert.Contains("segment 0 ends at offset 30 but the next segment starts at 60", broken.OfflineReason, StringComparison.Ordinal);
            Assert.Equal(ErrorCode.KafkaStorageError, broken.Read(0, 1 << 20).Error);
            Assert.Equal(ErrorCode.KafkaStorageError, broken.Append(TestBatch.Simple(1)).Error);
            Assert.Equal(ErrorCode.KafkaStorageError, broken.DeleteRecords(10).Error);
            var fine = t.GetPartition(1)!;
            Assert.False(fine.IsOffline);
            Assert.Equal(120 + restart, fine.HighWatermark);
            Assert.Equal(ErrorCode.None, fine.Read(0, 1 << 20).Error);
            Assert.Equal(120 + restart, fine.Append(TestBatch.Simple(1)).BaseOffset);
        }
        var after = Directory.EnumerateFiles(dir).Select(Path.GetFileName).Where(n => n!.EndsWith(".log", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(before, after);
    }
}

public sealed class InterruptedPartitionCreationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<LogManager> OpenAsync() => LogManager.OpenAsync(new StorageOptions { DataDirectory = _dir.Path, RunBackgroundTasks = false });

    [Fact]
    public async Task A_partition_directory_left_by_a_crashed_AddPartitions_is_kept_and_reused()
    {
        var meta = Path.Combine(_dir.Path, ".topics", "grow.json");
        byte[] onePartitionMeta;
        await using (var m = await OpenAsync())
        {
            m.CreateTopic("grow", 1);
            onePartitionMeta = File.ReadAllBytes(meta);
            Assert.Equal(ErrorCode.None, m.AddPartitions("grow", 2).Error);
        }
        File.WriteAllBytes(meta, onePartitionMeta); // as if the crash came before the metadata write
        await using (var m = await OpenAsync())
        {
            Assert.Equal(1, m.TryGetTopic("grow", out var t) ? t.PartitionCount : -1);
            Assert.True(Directory.Exists(Path.Combine(_dir.Path, "grow-1")));
            Assert.Equal(ErrorCode.None, m.AddPartitions("grow", 2).Error);
            Assert.Equal(0, m.GetPartition("grow", 1)!.Append(TestBatch.Simple(1)).BaseOffset);
        }
    }
}
