using Cairn.Broker.Admin;
using Cairn.Broker.Groups;
using Cairn.Protocol.Records;
using Cairn.Storage;

namespace Cairn.Tests.Admin;

/// <summary>Lag read from committed offsets and the partition logs alone, without a coordinator.</summary>
public sealed class GroupLagReaderTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "cairn-lag-" + Guid.NewGuid().ToString("N"));
    private readonly LogManager _logs;

    public GroupLagReaderTests()
    {
        _logs = LogManager.Open(new StorageOptions { DataDirectory = _dataDir, RunBackgroundTasks = false });
        _logs.CreateTopic("audit", 1);
        // Two batches of five records, timestamps 1 000 000 ms + 1 000 ms per offset.
        for (int batch = 0; batch < 2; batch++)
        {
            using var builder = new RecordBatchBuilder();
            for (int i = 0; i < 5; i++) builder.Append(1_000_000 + (batch * 5 + i) * 1000, (byte[]?)null, new byte[] { (byte)i });
            _logs.GetPartition("audit", 0)!.Append(builder.Build().AsSpan());
        }
    }

    public void Dispose()
    {
        _logs.Dispose();
        Directory.Delete(_dataDir, recursive: true);
    }

    private static CommittedOffset Committed(string topic, int partition, long offset) =>
        new(topic, Guid.Empty, partition, offset, -1, "meta", DateTimeOffset.UnixEpoch);

    [Fact]
    public void The_first_unconsumed_record_is_found_inside_a_batch()
    {
        var lag = GroupLagReader.Read(_logs, [Committed("audit", 0, 7)]).Single();
        Assert.Equal((7L, 0L, 10L, 3L), (lag.CommittedOffset, lag.LogStartOffset, lag.LogEndOffset, lag.Lag));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_007_000), lag.CommittedRecordTimestamp);
        Assert.Equal(("meta", DateTimeOffset.UnixEpoch), (lag.Metadata, lag.CommitTime));
    }

    [Fact]
    public void A_committed_offset_below_the_log_start_counts_from_the_log_start()
    {
        _logs.GetPartition("audit", 0)!.DeleteRecords(6);
        var lag = GroupLagReader.Read(_logs, [Committed("audit", 0, 2)]).Single();
        Assert.Equal((2L, 6L, 4L), (lag.CommittedOffset, lag.LogStartOffset, lag.Lag));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_006_000), lag.CommittedRecordTimestamp);
    }

    [Fact]
    public void Caught_up_groups_have_no_pending_timestamp_and_partitions_without_a_log_are_left_out()
    {
        var lags = GroupLagReader.Read(_logs, [Committed("audit", 0, 10), Committed("audit", 1, 0), Committed("gone", 0, 0)]);
        var lag = Assert.Single(lags);
        Assert.Equal(0, lag.Lag);
        Assert.Null(lag.CommittedRecordTimestamp);
    }
}
