using System.Globalization;
using System.Text;
using Cairn.Protocol.Records;

namespace Cairn.Client;

/// <summary>A partition of a topic.</summary>
public readonly record struct TopicPartition(string Topic, int Partition) : IComparable<TopicPartition>
{
    public int CompareTo(TopicPartition other)
    {
        int c = string.CompareOrdinal(Topic, other.Topic);
        return c != 0 ? c : Partition.CompareTo(other.Partition);
    }

    /// <summary>"topic/partition", the form Cairn.Offsets uses for Kafka sources.</summary>
    public override string ToString() => Topic + "/" + Partition.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// A record to produce. Key and value keep null distinct from empty: a null <see cref="Key"/> is sent as length -1.
/// </summary>
/// <remarks>
/// Careful with arrays: C# converts a null <c>byte[]</c> into an <em>empty</em> <see cref="ReadOnlyMemory{T}"/>, so
/// <c>Key = (byte[]?)null</c> would set an empty key. Use <see cref="FromBytes"/> or leave the property unset.
/// </remarks>
public sealed record Message
{
    public ReadOnlyMemory<byte>? Key { get; init; }
    public ReadOnlyMemory<byte>? Value { get; init; }
    public IReadOnlyList<RecordHeader>? Headers { get; init; }
    /// <summary>The record's CreateTime; null means now.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>A message from arrays, null arrays staying null.</summary>
    public static Message FromBytes(byte[]? key, byte[]? value, IReadOnlyList<RecordHeader>? headers = null, DateTimeOffset? timestamp = null) => new()
    {
        // Typed nulls: `key is null ? null : key` would be a byte[] expression, and a null byte[] converts to an empty memory.
        Key = key is null ? default(ReadOnlyMemory<byte>?) : key,
        Value = value is null ? default(ReadOnlyMemory<byte>?) : value,
        Headers = headers,
        Timestamp = timestamp,
    };

    /// <summary>A message whose key and value are UTF-8 text, null strings staying null.</summary>
    public static Message FromStrings(string? key, string? value, IReadOnlyList<RecordHeader>? headers = null, DateTimeOffset? timestamp = null) =>
        FromBytes(key is null ? null : Encoding.UTF8.GetBytes(key), value is null ? null : Encoding.UTF8.GetBytes(value), headers, timestamp);
}

public enum TimestampType
{
    NotAvailable,
    /// <summary>Set by the producer.</summary>
    CreateTime,
    /// <summary>Set by the broker when it appended the batch.</summary>
    LogAppendTime,
}

/// <summary>Where a produced record landed.</summary>
public sealed record DeliveryResult(TopicPartition TopicPartition, long Offset, DateTimeOffset Timestamp, TimestampType TimestampType)
{
    public string Topic => TopicPartition.Topic;
    public int Partition => TopicPartition.Partition;
}

/// <summary>
/// A consumed record, or (with <see cref="IsPartitionEof"/>) the news that the consumer reached the end of a partition:
/// then <see cref="Offset"/> is the position (the log end) and there is no key, value or header.
/// </summary>
/// <remarks>Key, value and header values are slices of the fetched data; holding a result keeps that buffer alive.</remarks>
public sealed class ConsumeResult
{
    internal ConsumeResult(TopicPartition topicPartition, long offset, DateTimeOffset timestamp, TimestampType timestampType,
        ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte>? value, IReadOnlyList<RecordHeader> headers, int? leaderEpoch, bool isPartitionEof)
    {
        TopicPartition = topicPartition;
        Offset = offset;
        Timestamp = timestamp;
        TimestampType = timestampType;
        Key = key;
        Value = value;
        Headers = headers;
        LeaderEpoch = leaderEpoch;
        IsPartitionEof = isPartitionEof;
    }

    public TopicPartition TopicPartition { get; }
    public string Topic => TopicPartition.Topic;
    public int Partition => TopicPartition.Partition;
    public long Offset { get; }
    public DateTimeOffset Timestamp { get; }
    public TimestampType TimestampType { get; }
    public ReadOnlyMemory<byte>? Key { get; }
    public ReadOnlyMemory<byte>? Value { get; }
    public IReadOnlyList<RecordHeader> Headers { get; }
    /// <summary>The partition leader epoch the batch was written in, when the broker sets it.</summary>
    public int? LeaderEpoch { get; }
    /// <summary>True for an end-of-partition notice rather than a record (see <see cref="ConsumerOptions.EnablePartitionEof"/>).</summary>
    public bool IsPartitionEof { get; }

    public string? KeyAsString() => Key is { } k ? Encoding.UTF8.GetString(k.Span) : null;
    public string? ValueAsString() => Value is { } v ? Encoding.UTF8.GetString(v.Span) : null;

    public override string ToString() => IsPartitionEof
        ? $"EOF {TopicPartition}@{Offset}"
        : $"{TopicPartition}@{Offset} key={Key?.Length.ToString(CultureInfo.InvariantCulture) ?? "null"}B value={Value?.Length.ToString(CultureInfo.InvariantCulture) ?? "null"}B";
}

/// <summary>A partition's log start offset (low) and log end offset / high-water mark (high).</summary>
public readonly record struct WatermarkOffsets(long Low, long High);

/// <summary>A committed group offset: the next record to read, with the committer's metadata and leader epoch.</summary>
public sealed record OffsetAndMetadata(long Offset, string? Metadata = null, int? LeaderEpoch = null);
