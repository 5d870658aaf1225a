using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

/// <summary>
/// <see cref="StorageCheck"/> and <see cref="StorageRepair"/> on data directories damaged the ways issue 10 lists:
/// a missing segment, a torn older segment, damaged topic files, foreign directories, a directory in use.
/// </summary>
public sealed class StorageCheckTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<LogManager> OpenAsync() => LogManager.OpenAsync(new StorageOptions { DataDirectory = _dir.Path, RunBackgroundTasks = false });

    private string PartitionDir(int p) => Path.Combine(_dir.Path, "t-" + p);

    private static string SegmentFile(string dir, long baseOffset, string suffix = ".log") => Path.Combine(dir, baseOffset.ToString("D20") + suffix);

    /// <summary>Topic t with two partitions of four segments each (bases 0, 30, 60, 90) and an empty active one at 120.</summary>
    private async Task WriteTopicAsync()
    {
        await using var m = await OpenAsync();
        foreach (var p in m.CreateTopic("t", 2).Topic!.Partitions)
            for (int s = 0; s < 4; s++)
            {
                for (int i = 0; i < 3; i++) Assert.True(p.Append(TestBatch.Simple(10)).Succeeded);
                p.Roll();
            }
    }

    [Fact]
    public async Task A_healthy_directory_is_reported_healthy_with_every_segment_and_offset()
    {
        await WriteTopicAsync();

        var report = StorageCheck.Run(_dir.Path);

        Assert.True(report.Healthy, string.Join("\n", report.Partitions.SelectMany(p => p.Problems)));
        Assert.Equal([("t", 0), ("t", 1)], report.Partitions.Select(p => (p.Topic, p.Partition)));
        var p0 = report.Partitions[0];
        Assert.False(p0.Offline);
        Assert.Equal([0L, 30, 60, 90, 120], p0.Segments.Select(s => s.BaseOffset));
        Assert.Equal((0L, 120L, 120L), (p0.LogStartOffset!.Value, p0.LogEndOffset!.Value, p0.ConsistentEndOffset!.Value));
        Assert.All(p0.Segments, s => Assert.Equal(s.SizeBytes, s.ValidBytes));
        Assert.Empty(report.ForeignDirectories);
        Assert.Empty(report.DamagedTopicFiles);
    }

    [Fact]
    public async Task A_missing_segment_is_a_gap_and_repair_moves_the_later_segments_aside_so_the_partition_opens_again()
    {
        await WriteTopicAsync();
        var dir = PartitionDir(0);
        File.Delete(SegmentFile(dir, 30));
        var kept = File.ReadAllBytes(SegmentFile(dir, 0));
        var later = new[] { 60L, 90, 120 }.ToDictionary(b => b, b => File.ReadAllBytes(SegmentFile(dir, b)));

        var report = StorageCheck.Run(_dir.Path);
        Assert.False(report.Healthy);
        var p0 = report.Partitions.Single(p => p.Partition == 0);
        Assert.True(p0.Offline);
        Assert.Equal(new SegmentGap(0, 30, 60), Assert.Single(p0.Gaps));
        Assert.Equal(30, p0.ConsistentEndOffset);
        Assert.Contains(p0.Problems, l => l.Contains("segment 0 ends at offset 30 but the next segment starts at 60", StringComparison.Ordinal));
        Assert.True(report.Partitions.Single(p => p.Partition == 1).Healthy);
        Assert.Equal(["t-0"], report.OfflinePartitions.Select(p => $"{p.Topic}-{p.Partition}"));

        var repair = Assert.Single(StorageRepair.TruncateAtGap(_dir.Path, null, null, DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000)));

        Assert.Null(repair.Refused);
        Assert.Equal((120L, 30L), (repair.OldLogEndOffset!.Value, repair.NewLogEndOffset!.Value));
        var aside = Path.Combine(dir, ".truncated-1800000000000");
        Assert.Equal(aside, repair.AsideDirectory);
        foreach (var (b, bytes) in later)
        {
            Assert.False(File.Exists(SegmentFile(dir, b)));
            Assert.Equal(bytes, File.ReadAllBytes(SegmentFile(aside, b)));
            Assert.Contains(repair.Moved, m => m.From == SegmentFile(dir, b) && m.To == SegmentFile(aside, b) && m.Bytes == bytes.Length);
        }
        Assert.Equal(kept, File.ReadAllBytes(SegmentFile(dir, 0)));
        Assert.True(StorageCheck.Run(_dir.Path).Healthy);
        Assert.Empty(StorageRepair.TruncateAtGap(_dir.Path, null, null, DateTimeOffset.UtcNow)); // nothing left to do

        await using var m = await OpenAsync();
        var log = m.GetPartition("t", 0)!;
        Assert.False(log.IsOffline);
        Assert.Equal(30, log.HighWatermark);
        Assert.Equal(ErrorCode.None, log.Read(0, 1 << 20).Error);
        Assert.Equal(30, log.Append(TestBatch.Simple(1)).BaseOffset);
        Assert.Empty(m.OfflinePartitions);
    }

    [Fact]
    public async Task A_torn_older_segment_has_its_unreadable_tail_copied_aside_and_cut_off()
    {
        await WriteTopicAsync();
        var dir = PartitionDir(1);
        var first = SegmentFile(dir, 0);
        var original = File.ReadAllBytes(first);
        File.WriteAllBytes(first, original[..^10]);

        var p1 = StorageCheck.Run(_dir.Path).Partitions.Single(p => p.Partition == 1);
        Assert.True(p1.Offline);
        Assert.Equal(20, p1.Gaps[0].EndsAt); // the third batch of ten is torn
        Assert.Contains(p1.Problems, l => l.Contains("segment 0:", StringComparison.Ordinal) && l.Contains("cannot be read", StringComparison.Ordinal));

        var repair = Assert.Single(StorageRepair.TruncateAtGap(_dir.Path, "t", 1, DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_001)));

        Assert.Equal(20, repair.NewLogEndOffset);
        var tail = Assert.Single(repair.Moved, m => m.From == first);
        long validBytes = p1.Segments[0].ValidBytes;
        Assert.Equal(original[(int)validBytes..^10], File.ReadAllBytes(tail.To));
        Assert.Equal(original[..(int)validBytes], File.ReadAllBytes(first));
        await using var m = await OpenAsync();
        Assert.Equal(20, m.GetPartition("t", 1)!.HighWatermark);
        Assert.Equal(120, m.GetPartition("t", 0)!.HighWatermark);
    }

    [Fact]
    public async Task Damaged_topic_files_and_foreign_directories_are_reported_and_left_alone()
    {
        await WriteTopicAsync();
        var topicFile = Path.Combine(_dir.Path, ".topics", "t.json");
        File.WriteAllText(topicFile, "{ not json");
        var foreign = Directory.CreateDirectory(Path.Combine(_dir.Path, "myapp-2")).FullName;
        File.WriteAllText(Path.Combine(foreign, "app.log"), "x");

        var report = StorageCheck.Run(_dir.Path);

        Assert.False(report.Healthy);
        Assert.Equal([topicFile], report.DamagedTopicFiles);
        Assert.Equal([foreign], report.ForeignDirectories);
        Assert.Equal(2, report.Partitions.Count); // still checked: the broker rebuilds the topic from them
        Assert.Equal("{ not json", File.ReadAllText(topicFile));
        Assert.True(File.Exists(Path.Combine(foreign, "app.log")));
    }

    [Fact]
    public async Task A_directory_a_broker_holds_is_refused()
    {
        await WriteTopicAsync();
        await using (var m = await OpenAsync())
        {
            var e = Assert.Throws<DataDirectoryInUseException>(() => DataDirectoryLock.Acquire(_dir.Path));
            Assert.Contains("stop the broker first", e.Message, StringComparison.Ordinal);
        }
        using (DataDirectoryLock.Acquire(_dir.Path))
        {
            // While a tool holds it, a broker does not start on it.
            await Assert.ThrowsAsync<InvalidOperationException>(OpenAsync);
        }
        Assert.Throws<DirectoryNotFoundException>(() => DataDirectoryLock.Acquire(Path.Combine(_dir.Path, "nope")));
    }
}
