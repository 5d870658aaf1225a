namespace Cairn.Storage;

/// <summary>Broker-wide storage settings.</summary>
public sealed class StorageOptions
{
    /// <summary>The data directory (log.dirs); created if missing.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Broker defaults for topic configs (topic overrides apply on top).</summary>
    public LogConfig DefaultConfig { get; set; } = LogConfig.Default;

    /// <summary>
    /// fsync before acknowledging acks=-1 produce requests (<see cref="PartitionLog.AppendAsync"/> with
    /// requireDurable). Off by default: like Kafka, durability comes from the page cache.
    /// </summary>
    public bool FlushOnAck { get; set; }

    /// <summary>log.retention.check.interval.ms (default 5 minutes).</summary>
    public TimeSpan RetentionCheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often partitions with a finite flush.ms are checked (log.flush.scheduler.interval.ms).</summary>
    public TimeSpan FlushCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Partitions recovered in parallel at startup (num.recovery.threads.per.data.dir).</summary>
    public int RecoveryThreads { get; set; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Default of <see cref="MaxPartitions"/>.</summary>
    public const int DefaultMaxPartitions = 10_000;

    /// <summary>
    /// max.partitions (KIP-578): the most partitions this broker hosts, all topics together. Creating topics or
    /// partitions past it (CreateTopics, CreatePartitions, auto-creation) fails with POLICY_VIOLATION; partitions
    /// already on disk are always loaded.
    /// </summary>
    public int MaxPartitions { get; set; } = DefaultMaxPartitions;

    /// <summary>Default of <see cref="MaxOpenFiles"/>.</summary>
    public const int DefaultMaxOpenFiles = 1024;

    /// <summary>
    /// log.max.open.files: how many segment file descriptors (.log, and the .index/.timeindex of active segments) storage
    /// keeps open across all partitions. Past it the least recently used idle ones are closed and reopened on their next
    /// use. Handles in use are never closed, so the count may pass it briefly by the number of storage operations running.
    /// </summary>
    public int MaxOpenFiles { get; set; } = DefaultMaxOpenFiles;

    /// <summary>Run the retention / interval-flush loop. Tests may turn it off and call the methods directly.</summary>
    public bool RunBackgroundTasks { get; set; } = true;
}
