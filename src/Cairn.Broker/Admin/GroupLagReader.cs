using Cairn.Broker.Groups;
using Cairn.Protocol;
using Cairn.Protocol.Records;
using Cairn.Storage;

namespace Cairn.Broker.Admin;

/// <summary>One partition's committed position next to its log: the numbers lag is made of.</summary>
internal sealed record PartitionLag(
    string Topic,
    int Partition,
    long CommittedOffset,
    long LogStartOffset,
    long LogEndOffset,
    long Lag,
    string? Metadata,
    DateTimeOffset? CommitTime,
    /// <summary>Timestamp of the first record not yet consumed (the one at the committed offset); null when caught up.</summary>
    DateTimeOffset? CommittedRecordTimestamp);

/// <summary>
/// Reads lag for the admin API, the metrics and the lag sampler: a group's committed offsets, as the coordinator
/// holds them, against the partition logs. Reading the first unconsumed record's timestamp decodes a record batch,
/// which is why this is not done where offsets are committed.
/// </summary>
internal static class GroupLagReader
{
    /// <summary>Committed offset, log end offset and lag for every partition the group has committed.</summary>
    public static IReadOnlyList<PartitionLag> Read(GroupCoordinator groups, LogManager logs, string groupId) =>
        Read(logs, groups.FetchOffsets(groupId, null));

    /// <summary>The lag of each committed offset whose partition exists; the others are left out.</summary>
    public static IReadOnlyList<PartitionLag> Read(LogManager logs, IEnumerable<CommittedOffset> committed)
    {
        var lags = new List<PartitionLag>();
        foreach (var c in committed)
        {
            var log = logs.GetPartition(c.Topic, c.Partition);
            if (log is null) continue;
            long end = log.HighWatermark;
            long start = log.LogStartOffset;
            long lag = GroupLag.Records(c.Offset, start, end);
            DateTimeOffset? pendingTimestamp = lag > 0 ? RecordTimestamp(log, Math.Max(c.Offset, start)) : null;
            lags.Add(new PartitionLag(c.Topic, c.Partition, c.Offset, start, end, lag, c.Metadata, c.CommitTime, pendingTimestamp));
        }
        return lags;
    }

    /// <summary>The timestamp of the record at <paramref name="offset"/> (or the first one after it); null when there is none to read.</summary>
    internal static DateTimeOffset? RecordTimestamp(PartitionLog log, long offset)
    {
        var read = log.Read(offset, 1);
        if (read.Error != ErrorCode.None || read.Records.Length == 0) return null;
        var bytes = new byte[read.Records.Length];
        read.Records.CopyTo(bytes);
        var iterator = new RecordBatchIterator(bytes);
        while (iterator.MoveNext())
        {
            if (iterator.Current.Header.LastOffset < offset) continue;
            foreach (var r in RecordBatch.ReadRecords(iterator.Current.Bytes, verifyCrc: false))
                if (r.Offset >= offset) return DateTimeOffset.FromUnixTimeMilliseconds(r.Timestamp);
        }
        return null;
    }
}
