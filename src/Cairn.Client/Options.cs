using Cairn.Protocol;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;

namespace Cairn.Client;

/// <summary>Connection settings shared by the producer, the consumer and the admin client.</summary>
public sealed record KafkaClientOptions
{
    /// <summary>"host:port[,host:port...]": brokers to ask for the cluster's metadata first. IPv6 hosts go in brackets.</summary>
    public string BootstrapServers { get; init; } = "localhost:9092";

    /// <summary>Sent in every request header; brokers use it in logs and quotas.</summary>
    public string ClientId { get; init; } = "cairn-client";

    /// <summary>How long to wait for one response (and for a connection to open) before failing the request.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Cached topic metadata older than this is fetched again before use.</summary>
    public TimeSpan MetadataMaxAge { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How many times an operation that failed with a retriable error is tried again.</summary>
    public int Retries { get; init; } = 5;

    /// <summary>Wait before the first retry; it doubles with each further attempt (up to 1 s).</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Logs connections opened and lost and metadata refreshes (never individual requests). Null: no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// Upper bounds on the request version used per API (for interoperability tests and diagnosing brokers that
    /// misreport their versions). Without an entry, the highest version both sides support is used.
    /// </summary>
    public IReadOnlyDictionary<ApiKey, short>? MaxApiVersions { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(BootstrapServers)) throw new ArgumentException("BootstrapServers is empty", nameof(BootstrapServers));
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentException("RequestTimeout must be positive", nameof(RequestTimeout));
        if (Retries < 0) throw new ArgumentException("Retries cannot be negative", nameof(Retries));
        if (RetryBackoff < TimeSpan.Zero) throw new ArgumentException("RetryBackoff cannot be negative", nameof(RetryBackoff));
        _ = Internal.BootstrapParser.Parse(BootstrapServers);
    }
}

/// <summary>How many replicas must have a batch before the producer's request is answered.</summary>
public enum Acks : short
{
    /// <summary>No answer at all (acks=0): delivery results carry offset -1 and errors on the broker are not seen.</summary>
    None = 0,
    /// <summary>The leader has appended the batch (acks=1).</summary>
    Leader = 1,
    /// <summary>Every in-sync replica has the batch (acks=all, -1).</summary>
    All = -1,
}

public sealed record ProducerOptions
{
    public Acks Acks { get; init; } = Acks.All;

    /// <summary>How long a batch may wait for more records before it is sent. Zero: send as soon as possible.</summary>
    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>A partition's batch is sent once it reaches this many (uncompressed) bytes.</summary>
    public int BatchSizeBytes { get; init; } = 1024 * 1024;

    public CompressionCodec Compression { get; init; } = CompressionCodec.None;

    /// <summary>
    /// Idempotent delivery: a producer id (InitProducerId) and per-partition sequence numbers let the broker
    /// drop duplicates of retried batches and reject gaps, so retries neither duplicate nor reorder records.
    /// Forces <see cref="Acks.All"/> and at most 5 requests in flight per connection.
    /// </summary>
    public bool Idempotent { get; init; }

    /// <summary>
    /// Produce requests awaiting an answer per broker connection. With more than one and without
    /// <see cref="Idempotent"/>, a retried batch may land after a later one.
    /// </summary>
    public int MaxInFlightPerConnection { get; init; } = 5;

    /// <summary>A record not acknowledged this long after it was produced fails (retries included).</summary>
    public TimeSpan DeliveryTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Bytes of records waiting to be sent before <see cref="KafkaProducer.ProduceAsync(string, Message, CancellationToken)"/>
    /// waits for room (backpressure).
    /// </summary>
    public long BufferMemoryBytes { get; init; } = 64L * 1024 * 1024;

    internal Acks EffectiveAcks => Idempotent ? Acks.All : Acks;
    internal int EffectiveMaxInFlight => Idempotent ? Math.Min(5, MaxInFlightPerConnection) : MaxInFlightPerConnection;

    internal void Validate()
    {
        if (!Enum.IsDefined(Acks)) throw new ArgumentException($"unknown acks {Acks}", nameof(Acks));
        if (Idempotent && Acks != Acks.All)
            throw new ArgumentException("an idempotent producer needs Acks.All (the default)", nameof(Acks));
        if (Linger < TimeSpan.Zero) throw new ArgumentException("Linger cannot be negative", nameof(Linger));
        if (BatchSizeBytes < 1) throw new ArgumentException("BatchSizeBytes must be positive", nameof(BatchSizeBytes));
        if (!Protocol.Compression.CompressionCodecs.IsDefined(Compression)) throw new ArgumentException($"unknown codec {Compression}", nameof(Compression));
        if (MaxInFlightPerConnection < 1) throw new ArgumentException("MaxInFlightPerConnection must be at least 1", nameof(MaxInFlightPerConnection));
        if (DeliveryTimeout <= TimeSpan.Zero) throw new ArgumentException("DeliveryTimeout must be positive", nameof(DeliveryTimeout));
        if (BufferMemoryBytes < 1) throw new ArgumentException("BufferMemoryBytes must be positive", nameof(BufferMemoryBytes));
    }
}

/// <summary>Which records a fetch may return: all appended ones, or only those of committed (or no) transactions.</summary>
public enum IsolationLevel : sbyte
{
    ReadUncommitted = 0,
    ReadCommitted = 1,
}

/// <summary>Where a consumer starts when it has no position, or its position is no longer in the log.</summary>
public enum AutoOffsetReset
{
    /// <summary>The oldest record still in the log.</summary>
    Earliest,
    /// <summary>The end of the log: only records appended from now on.</summary>
    Latest,
    /// <summary>Fail: <see cref="KafkaConsumer.ConsumeAsync(CancellationToken)"/> throws (OFFSET_OUT_OF_RANGE, or no position).</summary>
    None,
}

public sealed record ConsumerOptions
{
    /// <summary>How long the broker may hold a fetch waiting for <see cref="MinBytes"/> (the long poll).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The broker answers a fetch as soon as this much data is available.</summary>
    public int MinBytes { get; init; } = 1;

    /// <summary>Upper bound of one fetch response (the first batch is returned whole even if larger).</summary>
    public int MaxBytes { get; init; } = 50 * 1024 * 1024;

    /// <summary>Upper bound of data per partition in one fetch (the first batch is returned whole even if larger).</summary>
    public int MaxPartitionBytes { get; init; } = 1024 * 1024;

    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.ReadUncommitted;

    /// <summary>What to do for a partition without a position, or when the position has left the log.</summary>
    public AutoOffsetReset AutoOffsetReset { get; init; } = AutoOffsetReset.Latest;

    /// <summary>
    /// Report reaching the end of a partition as a result with <see cref="ConsumeResult.IsPartitionEof"/> set: once each
    /// time the position catches up with the end of the log.
    /// </summary>
    public bool EnablePartitionEof { get; init; }

    /// <summary>Check each batch's CRC-32C before handing out its records.</summary>
    public bool CheckCrcs { get; init; } = true;

    internal void Validate()
    {
        if (MaxWait < TimeSpan.Zero || MaxWait.TotalMilliseconds > int.MaxValue) throw new ArgumentException("MaxWait is out of range", nameof(MaxWait));
        if (MinBytes < 0) throw new ArgumentException("MinBytes cannot be negative", nameof(MinBytes));
        if (MaxBytes < 1) throw new ArgumentException("MaxBytes must be positive", nameof(MaxBytes));
        if (MaxPartitionBytes < 1) throw new ArgumentException("MaxPartitionBytes must be positive", nameof(MaxPartitionBytes));
    }
}
