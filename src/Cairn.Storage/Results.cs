using Cairn.Protocol;
using Cairn.Protocol.Records;

namespace Cairn.Storage;

/// <summary>
/// Outcome of <see cref="PartitionLog.Append(Span{byte})"/>. On success <see cref="BaseOffset"/> and
/// <see cref="LastOffset"/> are the offsets of the first and last record appended (for a duplicate
/// idempotent batch: of the original append, with <see cref="IsDuplicate"/> set). <see cref="LogAppendTime"/>
/// is the broker time stamped into the batches for LogAppendTime topics, else -1. On error nothing was
/// appended and the offsets are -1.
/// </summary>
public readonly record struct AppendResult(
    ErrorCode Error,
    long BaseOffset,
    long LastOffset,
    long LogAppendTime,
    long LogStartOffset,
    string? ErrorMessage = null,
    bool IsDuplicate = false,
    int RecordCount = 0)
{
    public bool Succeeded => Error == ErrorCode.None;

    internal static AppendResult Failed(ErrorCode error, long logStartOffset, string? message) =>
        new(error, -1, -1, -1, logStartOffset, message);
}

/// <summary>
/// Outcome of <see cref="PartitionLog.Read"/>. <see cref="Records"/> holds whole batches (possibly none)
/// and copies straight from the segment file when serialized. <see cref="HighWatermark"/> and
/// <see cref="LogStartOffset"/> are the values observed by the read.
/// </summary>
public readonly record struct ReadResult(ErrorCode Error, RecordsPayload Records, long HighWatermark, long LogStartOffset)
{
    /// <summary>Single node, no transactions aborted separately: the last stable offset is the high-water mark.</summary>
    public long LastStableOffset => HighWatermark;
}

/// <summary>An offset and the timestamp that goes with it; (-1, -1) means "none".</summary>
public readonly record struct OffsetAndTimestamp(long Offset, long Timestamp)
{
    public static OffsetAndTimestamp None => new(-1, -1);
    public bool IsNone => Offset < 0;
}

/// <summary>Outcome of <see cref="PartitionLog.DeleteRecords"/>: the new log start offset (low watermark).</summary>
public readonly record struct DeleteRecordsResult(ErrorCode Error, long LowWatermark);

/// <summary>What one retention pass deleted from one partition.</summary>
public readonly record struct RetentionResult(int SegmentsDeleted, long BytesDeleted, long LogStartOffset);

/// <summary>Outcome of a topic admin operation on <see cref="LogManager"/>.</summary>
public readonly record struct TopicOperationResult(ErrorCode Error, string? ErrorMessage, TopicLog? Topic)
{
    public bool Succeeded => Error == ErrorCode.None;
    internal static TopicOperationResult Fail(ErrorCode e, string? message) => new(e, message, null);
}
