using System.Buffers.Binary;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

/// <summary>
/// The .index and .timeindex file formats, pinned independently of the index code: data directories written by
/// earlier versions must keep opening without a rebuild.
/// </summary>
public sealed class IndexFormatTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));

    public void Dispose() => _dir.Dispose();

    private string Dir => _dir.Sub("f-0");

    private static string SegmentFile(string dir, long baseOffset, string ext) => Path.Combine(dir, baseOffset.ToString("D20") + ext);

    private static byte[] OffsetEntry(int relativeOffset, int position)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(b, relativeOffset);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), position);
        return b;
    }

    private static byte[] TimeEntry(long timestamp, int relativeOffset)
    {
        var b = new byte[12];
        BinaryPrimitives.WriteInt64BigEndian(b, timestamp);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), relativeOffset);
        return b;
    }

    [Fact]
    public void Written_entries_are_big_endian_offset_position_and_timestamp_offset_pairs()
    {
        var layout = new List<(long Pos, long Base, int Size, long MaxTs)>();
        using (var log = PartitionLog.Open(Dir, "f", 0, LogConfig.Default with { IndexIntervalBytes = 1 }, time: _time))
        {
            long pos = 0;
            for (int i = 0; i < 6; i++)
            {
                var batch = TestBatch.Simple(3, timestamp: 5_000 + 100 * i);
                var r = log.Append(batch);
                Assert.True(r.Succeeded);
                layout.Add((pos, r.BaseOffset, batch.Length, 5_000 + 100 * i + 2));
                pos += batch.Length;
            }
        }
        // index.interval.bytes 1: an entry for every batch after the first (the first is found from position 0).
        var index = File.ReadAllBytes(SegmentFile(Dir, 0, ".index"));
        var expectedIndex = layout.Skip(1).SelectMany(b => OffsetEntry((int)b.Base, (int)b.Pos)).ToArray();
        Assert.Equal(expectedIndex, index);
        // With each batch indexed, each time entry names that batch's max timestamp and last offset (timestamps
        // increase here); sealing at close adds nothing, the last batch already has its entry.
        var time = File.ReadAllBytes(SegmentFile(Dir, 0, ".timeindex"));
        var expectedTime = layout.Skip(1).SelectMany(b => TimeEntry(b.MaxTs, (int)b.Base + 2)).ToArray();
        Assert.Equal(expectedTime, time);
    }

    [Fact]
    public void A_valid_index_written_by_hand_is_used_as_it_is()
    {
        var positions = new List<long>();
        using (var log = PartitionLog.Open(Dir, "f", 0, LogConfig.Default, time: _time))
        {
            long pos = 0;
            for (int i = 0; i < 8; i++)
            {
                var batch = TestBatch.Simple(2, timestamp: 9_000 + 10 * i);
                Assert.True(log.Append(batch).Succeeded);
                positions.Add(pos);
                pos += batch.Length;
            }
        }
        // Sparser than the default rule would make (one entry each, at batch 5): a rebuild would write different bytes.
        var index = OffsetEntry(10, (int)positions[5]);
        var time = TimeEntry(9_051, 11);
        File.WriteAllBytes(SegmentFile(Dir, 0, ".index"), index);
        File.WriteAllBytes(SegmentFile(Dir, 0, ".timeindex"), time);

        using (var log = PartitionLog.Open(Dir, "f", 0, LogConfig.Default, time: _time))
        {
            Assert.Equal(16, log.HighWatermark);
            var r = log.Read(11, 1 << 20);
            Assert.Equal(ErrorCode.None, r.Error);
            Assert.Equal(10, TestBatch.Split(r.Records.Bytes())[0].Base);
            Assert.Equal(new OffsetAndTimestamp(12, 9_060), log.FindOffsetByTimestamp(9_055));
            Assert.Equal(index, File.ReadAllBytes(SegmentFile(Dir, 0, ".index")));
            Assert.Equal(time, File.ReadAllBytes(SegmentFile(Dir, 0, ".timeindex")));
        }
    }

    [Theory]
    [InlineData("decreasing offsets")]
    [InlineData("position past the log")]
    [InlineData("partial entry")]
    public void A_damaged_offset_index_is_rebuilt(string damage)
    {
        long size;
        using (var log = PartitionLog.Open(Dir, "f", 0, LogConfig.Default with { IndexIntervalBytes = 1 }, time: _time))
        {
            for (int i = 0; i < 4; i++) Assert.True(log.Append(TestBatch.Simple(2, timestamp: 1_000 + i)).Succeeded);
            size = log.SizeInBytes;
        }
        var path = SegmentFile(Dir, 0, ".index");
        var good = File.ReadAllBytes(path);
        byte[] bad = damage switch
        {
            "decreasing offsets" => [.. OffsetEntry(4, 200), .. OffsetEntry(2, 300)],
            "position past the log" => OffsetEntry(2, (int)size + 10),
            _ => good[..^3],
        };
        File.WriteAllBytes(path, bad);
        using (var log = PartitionLog.Open(Dir, "f", 0, LogConfig.Default with { IndexIntervalBytes = 1 }, time: _time))
        {
            Assert.Equal(8, log.HighWatermark);
            Assert.Equal(6, TestBatch.Split(log.Read(7, 1 << 20).Records.Bytes())[0].Base);
        }
        Assert.Equal(good, File.ReadAllBytes(path));
    }
}
