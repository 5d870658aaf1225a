using System.Diagnostics.CodeAnalysis;

namespace Cairn.Storage;

/// <summary>
/// One partition as the request handlers use it: appends, reads, offset lookups, deleting records, and the append
/// notification a long-poll fetch waits on. <see cref="PartitionLog"/> (a local directory of segments) implements it;
/// cluster mode plugs its own partitions in here, and the handlers do not change.
/// </summary>
/// <remarks>
/// Reads and offset lookups are synchronous: they are served from data this broker holds (in cluster mode, its local
/// copy), and the fetch path must not pay for an async state machine per partition. Appends are asynchronous because
/// acknowledging one may wait for durability (an fsync here, replication in cluster mode). Every member is called
/// concurrently by many connections.
/// </remarks>
public interface IPartitionLog
{
    string Topic { get; }
    int Partition { get; }

    /// <summary>The offset after the last record consumers may read (the next offset an append gets, single node).</summary>
    long HighWatermark { get; }

    /// <summary>The first offset that can be read (the low watermark).</summary>
    long LogStartOffset { get; }

    /// <summary>The bytes the partition's records take in storage.</summary>
    long SizeInBytes { get; }

    /// <summary>True once the partition takes no more appends here (shut down or deleted); long polls stop waiting on it.</summary>
    bool IsClosed { get; }

    /// <summary>
    /// Why the partition is offline, or null while it is online. An offline partition (its files could not be trusted
    /// at start-up, e.g. a gap between segments) answers KAFKA_STORAGE_ERROR to every read and append and is shown
    /// leaderless in Metadata, as Kafka shows a partition whose only replica's log directory is offline.
    /// </summary>
    string? OfflineReason => null;

    /// <summary>
    /// Appends a produce request's record batches (v2, concatenated); the assigned base offsets are written into
    /// <paramref name="records"/> in place. All batches are validated first: any error appends nothing and comes back
    /// as the result's error code. With <paramref name="acksAll"/> the append completes once it is as durable as the
    /// broker promises for acks=-1. A failure of the storage itself comes back as KAFKA_STORAGE_ERROR or is thrown
    /// (an I/O exception, which the broker's error policy answers with the same code).
    /// </summary>
    ValueTask<AppendResult> AppendAsync(Memory<byte> records, bool acksAll, CancellationToken cancellationToken);

    /// <summary>
    /// Whole batches from the one containing <paramref name="fetchOffset"/>, up to <paramref name="maxBytes"/>; a first
    /// batch larger than that comes back whole when <paramref name="minOneBatch"/> (KIP-74), else nothing.
    /// OFFSET_OUT_OF_RANGE outside [log start offset, high-water mark]; no records at the high-water mark.
    /// </summary>
    ReadResult Read(long fetchOffset, int maxBytes, bool minOneBatch);

    /// <summary>The first offset whose record timestamp is at or after <paramref name="timestamp"/>, with that timestamp; none when no record is that new.</summary>
    OffsetAndTimestamp FindOffsetByTimestamp(long timestamp);

    /// <summary>The offset and timestamp of the record with the largest timestamp (the first such); none for an empty partition.</summary>
    OffsetAndTimestamp GetMaxTimestamp();

    /// <summary>
    /// Makes every record before <paramref name="beforeOffset"/> unreadable (the log start offset moves up to it).
    /// OFFSET_OUT_OF_RANGE when it is negative or past the high-water mark.
    /// </summary>
    DeleteRecordsResult DeleteRecords(long beforeOffset);

    /// <summary>
    /// Wakes <paramref name="waiter"/> (<see cref="AppendWaiter.Wake"/>) after every append that moves the high-water
    /// mark, and when the partition closes, until it is removed. An implementation must make a wake that follows an
    /// append visible to a caller that registers first and then reads <see cref="HighWatermark"/>: such a caller never
    /// misses an append.
    /// </summary>
    void AddAppendWaiter(AppendWaiter waiter);

    void RemoveAppendWaiter(AppendWaiter waiter);
}

/// <summary>A topic as the request handlers see it: its name and id, its effective config, and its partitions.</summary>
public interface ITopic
{
    string Name { get; }

    /// <summary>Stable across restarts. For the wire: <c>Id.ToByteArray(bigEndian: true)</c>.</summary>
    Guid Id { get; }

    int PartitionCount { get; }

    /// <summary>The effective config: broker defaults with the topic's overrides.</summary>
    LogConfig Config { get; }

    /// <summary>The partitions, indexed by partition number.</summary>
    IReadOnlyList<IPartitionLog> Partitions { get; }

    bool TryGetPartition(int partition, [NotNullWhen(true)] out IPartitionLog? log);

    /// <summary>Every known config with its value and source, for DescribeConfigs.</summary>
    IReadOnlyList<ConfigEntry> DescribeConfigs();
}
