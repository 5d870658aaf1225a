using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

public sealed class RecoveryTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));

    public void Dispose() => _dir.Dispose();

    private string Dir => _dir.Sub("t-0");

    private PartitionLog Open(LogConfig? config = null) => PartitionLog.Open(Dir, "t", 0, config ?? LogConfig.Default, time: _time);

    private static string SegmentFile(string dir, long baseOffset, string ext) => Path.Combine(dir, baseOffset.ToString("D20") + ext);

    /// <summary>Appends <paramref name="batches"/> two-record batches; returns each batch's (file position, size).</summary>
    private static List<(long Pos, int Size)> Fill(PartitionLog log, int batches, int valueSize = 40)
    {
        var layout = new List<(long, int)>();
        long pos = 0;
        for (int i = 0; i < batches; i++)
        {
            var b = TestBatch.Simple(2, timestamp: 1_000 + i * 10, valueSize: valueSize);
            Assert.True(log.Append(b).Succeeded);
            layout.Add((pos, b.Length));
            pos += b.Length;
        }
        return layout;
    }

    private static void AssertContiguous(PartitionLog log, long from, long to)
    {
        long next = from;
        while (next < log.HighWatermark)
        {
            var r = log.Read(next, 1 << 20);
            Assert.Equal(ErrorCode.None, r.Error);
            var batches = TestBatch.Split(r.Records.Bytes());
            Assert.NotEmpty(batches);
            foreach (var b in batches)
            {
                Assert.Equal(next, b.Base);
                next = b.Last + 1;
            }
        }
        Assert.Equal(to, next);
    }

    [Fact]
    public void Reopen_after_clean_shutdown_continues_offsets()
    {
        var log = Open();
        Fill(log, 5);
        log.Close();
        Assert.True(File.Exists(Path.Combine(Dir, "clean-shutdown")));
        log = Open();
        Assert.False(File.Exists(Path.Combine(Dir, "clean-shutdown")));
        Assert.Equal(10, log.HighWatermark);
        Assert.Equal(10, log.DurableOffset);
        Assert.Equal(10, log.Append(TestBatch.Simple(1)).BaseOffset);
        AssertContiguous(log, 0, 11);
        log.Close();
    }

    [Fact]
    public void Truncated_tail_is_cut_at_the_last_whole_batch()
    {
        var log = Open();
        var layout = Fill(log, 10);
        log.SimulateCrash();
        using (var f = new FileStream(SegmentFile(Dir, 0, ".log"), FileMode.Open))
            f.SetLength(layout[9].Pos + layout[9].Size / 2); // cut the last batch in half

        log = Open();
        Assert.Equal(18, log.HighWatermark);
        Assert.Equal(layout[9].Pos, new FileInfo(SegmentFile(Dir, 0, ".log")).Length);
        AssertContiguous(log, 0, 18);
        Assert.Equal(18, log.Append(TestBatch.Simple(3)).BaseOffset);
        AssertContiguous(log, 0, 21);
        log.Close();
    }

    [Fact]
    public void Flipped_byte_in_last_batch_truncates_there_and_offsets_continue()
    {
        var log = Open();
        var layout = Fill(log, 10);
        log.SimulateCrash();
        using (var f = new FileStream(SegmentFile(Dir, 0, ".log"), FileMode.Open))
        {
            f.Position = layout[9].Pos + layout[9].Size - 5;
            int b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x10));
        }
        log = Open();
        Assert.Equal(18, log.HighWatermark);
        AssertContiguous(log, 0, 18);
        var r = log.Append(TestBatch.Simple(2));
        Assert.Equal(18, r.BaseOffset);
        AssertContiguous(log, 0, 20); // every offset exactly once
        log.Close();
    }

    [Fact]
    public void Corrupt_batch_in_the_middle_of_the_active_segment_drops_everything_after_it()
    {
        var log = Open();
        var layout = Fill(log, 10);
        log.SimulateCrash();
        using (var f = new FileStream(SegmentFile(Dir, 0, ".log"), FileMode.Open))
        {
            f.Position = layout[4].Pos + 70;
            f.WriteByte(0xEE);
        }
        log = Open();
        Assert.Equal(8, log.HighWatermark);
        AssertContiguous(log, 0, 8);
        log.Close();
    }

    [Fact]
    public void Garbage_after_the_last_batch_is_truncated()
    {
        var log = Open();
        var layout = Fill(log, 3);
        log.SimulateCrash();
        using (var f = new FileStream(SegmentFile(Dir, 0, ".log"), FileMode.Open))
            f.SetLength(f.Length + 4096); // e.g. preallocated zeros
        log = Open();
        Assert.Equal(6, log.HighWatermark);
        Assert.Equal(layout[2].Pos + layout[2].Size, new FileInfo(SegmentFile(Dir, 0, ".log")).Length);
        log.Close();
    }

    [Fact]
    public void Torn_older_segment_takes_the_partition_offline_and_keeps_every_segment()
    {
        var cfg = LogConfig.Default with { SegmentBytes = 600 };
        var log = Open(cfg);
        Fill(log, 12); // ~ 130 bytes per batch: several segments
        var bases = log.SegmentBaseOffsets;
        Assert.True(bases.Count >= 3);
        log.SimulateCrash();
        var first = SegmentFile(Dir, bases[0], ".log");
        using (var f = new FileStream(first, FileMode.Open)) f.SetLength(f.Length - 10);

        log = Open(cfg);
        Assert.True(log.IsOffline);
        foreach (var b in bases) Assert.True(File.Exists(SegmentFile(Dir, b, ".log")));
        Assert.Equal(ErrorCode.KafkaStorageError, log.Read(0, 1 << 20).Error);
        Assert.Equal(ErrorCode.KafkaStorageError, log.Append(TestBatch.Simple(1)).Error);
        log.Close();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Missing_or_garbage_indexes_are_rebuilt(bool cleanShutdown)
    {
        var cfg = LogConfig.Default with { SegmentBytes = 2000, IndexIntervalBytes = 100 };
        var log = Open(cfg);
        Fill(log, 60);
        var bases = log.SegmentBaseOffsets;
        Assert.True(bases.Count >= 3);
        if (cleanShutdown) log.Close(); else log.SimulateCrash();

        // Active segment: index deleted. First segment: garbage index (monotonic check fails), partial time index entry.
        // Second segment: index entry pointing past the end of the log.
        File.Delete(SegmentFile(Dir, bases[^1], ".index"));
        File.WriteAllBytes(SegmentFile(Dir, bases[0], ".index"), [0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        File.WriteAllBytes(SegmentFile(Dir, bases[0], ".timeindex"), new byte[7]);
        File.WriteAllBytes(SegmentFile(Dir, bases[1], ".index"), [0, 0, 0, 1, 0x7F, 0, 0, 0]);

        log = Open(cfg);
        Assert.Equal(120, log.HighWatermark);
        for (long off = 0; off < 120; off++)
        {
            var batches = TestBatch.Split(log.Read(off, 1).Records.Bytes());
            Assert.True(batches[0].Base <= off && off <= batches[0].Last, $"offset {off}");
        }
        AssertContiguous(log, 0, 120);
        // Timestamps: batch i has records at 1000 + 10i and 1001 + 10i.
        Assert.Equal(new OffsetAndTimestamp(2 * 37, 1370), log.FindOffsetByTimestamp(1365));
        foreach (var b in bases)
        {
            long len = new FileInfo(SegmentFile(Dir, b, ".index")).Length;
            Assert.True(len > 0 && len % 8 == 0, $"index of {b}: {len} bytes");
            Assert.Equal(0, new FileInfo(SegmentFile(Dir, b, ".timeindex")).Length % 12);
        }
        Assert.Equal(120, log.Append(TestBatch.Simple(1)).BaseOffset);
        log.Close();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Reopened_active_segment_writes_its_new_index_entries_as_a_rebuild_would(bool cleanShutdown)
    {
        // The active segment's index files are opened only on the first entry appended after a restart. (No time-based
        // roll: the test batches' timestamps are far in the past.)
        var cfg = LogConfig.Default with { SegmentBytes = 1 << 20, IndexIntervalBytes = 100, SegmentMs = long.MaxValue };
        var log = Open(cfg);
        Fill(log, 20);
        if (cleanShutdown) log.Close(); else log.SimulateCrash();
        log = Open(cfg);
        Fill(log, 20);
        Assert.Equal(1, log.SegmentCount);
        log.Close();
        var index = File.ReadAllBytes(SegmentFile(Dir, 0, ".index"));
        Assert.True(new FileInfo(SegmentFile(Dir, 0, ".timeindex")).Length > 0);
        Assert.True(index.Length >= 8 * 30, $"index of 40 batches has {index.Length} bytes");

        File.Delete(SegmentFile(Dir, 0, ".index"));
        File.Delete(SegmentFile(Dir, 0, ".timeindex"));
        log = Open(cfg); // rebuilt from the batches
        log.Close();
        Assert.Equal(index, File.ReadAllBytes(SegmentFile(Dir, 0, ".index")));
        // Batch i has records at 1000 + 10i and 1001 + 10i (i counts again from 0 in the second Fill).
        log = Open(cfg);
        Assert.Equal(new OffsetAndTimestamp(2 * 15, 1150), log.FindOffsetByTimestamp(1145));
        log.Close();
        log = Open(cfg);
        AssertContiguous(log, 0, 80);
        log.Close();
    }

    [Fact]
    public void Torn_active_segment_after_a_crash_is_cut_with_many_closed_segments_before_it()
    {
        var cfg = LogConfig.Default with { SegmentBytes = 1000, IndexIntervalBytes = 100 };
        var log = Open(cfg);
        Fill(log, 80);
        var bases = log.SegmentBaseOffsets;
        Assert.True(bases.Count >= 5);
        long end = log.HighWatermark;
        log.SimulateCrash();
        var active = SegmentFile(Dir, bases[^1], ".log");
        long size = new FileInfo(active).Length;
        Assert.True(size > 10);
        using (var f = File.OpenHandle(active, FileMode.Open, FileAccess.ReadWrite)) RandomAccess.SetLength(f, size - 5);

        log = Open(cfg);
        Assert.Equal(end - 2, log.HighWatermark); // the torn last batch (two records) is gone
        Assert.Equal(bases, log.SegmentBaseOffsets);
        AssertContiguous(log, 0, end - 2);
        Assert.Equal(end - 2, log.Append(TestBatch.Simple(1)).BaseOffset);
        log.Close();
    }

    [Fact]
    public void Index_damaged_in_the_middle_is_rebuilt_when_first_used()
    {
        var cfg = LogConfig.Default with { SegmentBytes = 4000, IndexIntervalBytes = 100 };
        var log = Open(cfg);
        Fill(log, 60);
        var bases = log.SegmentBaseOffsets;
        log.Close();
        // Swap two entries in the middle: the last entry (checked at open) stays valid.
        var path = SegmentFile(Dir, bases[0], ".index");
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length >= 32);
        var tmp = bytes[8..16];
        bytes.AsSpan(16, 8).CopyTo(bytes.AsSpan(8));
        tmp.CopyTo(bytes.AsSpan(16));
        File.WriteAllBytes(path, bytes);

        log = Open(cfg);
        for (long off = 0; off < bases[1]; off++)
        {
            var batches = TestBatch.Split(log.Read(off, 1).Records.Bytes());
            Assert.True(batches[0].Base <= off && off <= batches[0].Last, $"offset {off}");
        }
        Assert.NotEqual(bytes, File.ReadAllBytes(path)); // rewritten
        log.Close();
    }

    [Fact]
    public void Log_start_checkpoint_above_recovered_end_starts_an_empty_log_there()
    {
        var log = Open();
        Fill(log, 5);
        log.DeleteRecords(10);
        log.SimulateCrash();
        File.Delete(SegmentFile(Dir, 0, ".log"));
        File.Delete(SegmentFile(Dir, 0, ".index"));
        File.Delete(SegmentFile(Dir, 0, ".timeindex"));
        log = Open();
        Assert.Equal(10, log.LogStartOffset);
        Assert.Equal(10, log.HighWatermark);
        Assert.Equal(10, log.Append(TestBatch.Simple(1)).BaseOffset);
        log.Close();
    }
}
