using Cairn.Offsets;

namespace Cairn.Client;

/// <summary>A topic to create. -1 partitions or replication factor: the broker's default.</summary>
public sealed record NewTopic(string Name, int NumPartitions = -1, short ReplicationFactor = -1)
{
    /// <summary>Topic configs ("retention.ms", "cleanup.policy", ...).</summary>
    public IReadOnlyDictionary<string, string?>? Configs { get; init; }

    /// <summary>Explicit replicas per partition (instead of a partition count and replication factor).</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<int>>? ReplicaAssignments { get; init; }
}

public sealed record CreatedTopic(string Name, Guid TopicId, int NumPartitions, short ReplicationFactor);

public sealed record TopicListing(string Name, Guid TopicId, bool IsInternal, int PartitionCount);

/// <summary>A partition: its leader and replicas, and (when asked) its log start and end offsets.</summary>
public sealed record PartitionDescription(
    int Partition, int Leader, int LeaderEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr, IReadOnlyList<int> OfflineReplicas,
    long? LogStartOffset, long? LogEndOffset);

public sealed record TopicDescription(string Name, Guid TopicId, bool IsInternal, IReadOnlyList<PartitionDescription> Partitions);

public sealed record BrokerDescription(int NodeId, string Host, int Port, string? Rack);

public sealed record ClusterDescription(string? ClusterId, int ControllerId, IReadOnlyList<BrokerDescription> Brokers);

/// <summary>One API as a broker offers it: its version range, and the version this client uses (-1: none both sides support).</summary>
public sealed record ApiVersionSupport(Cairn.Protocol.ApiKey Api, short MinVersion, short MaxVersion, short UsedVersion);

/// <summary>A broker's ApiVersions answer.</summary>
public sealed record BrokerApiVersions(int NodeId, IReadOnlyList<ApiVersionSupport> Apis);

/// <summary>Kafka's config resource types.</summary>
public enum ConfigResourceType : sbyte
{
    Unknown = 0,
    Topic = 2,
    Group = 3,
    Broker = 4,
    BrokerLogger = 8,
    ClientMetrics = 16,
}

/// <summary>Something with configs: a topic (by name), a broker (by node id; "" for the cluster-wide default), ...</summary>
public readonly record struct ConfigResource(ConfigResourceType Type, string Name)
{
    public static ConfigResource Topic(string name) => new(ConfigResourceType.Topic, name);
    public static ConfigResource Broker(int nodeId) => new(ConfigResourceType.Broker, nodeId.ToString(System.Globalization.CultureInfo.InvariantCulture));
    public override string ToString() => $"{Type}:{Name}";
}

/// <summary>Where a config value comes from (Kafka's config_source numbering).</summary>
public enum ConfigSource : sbyte
{
    Unknown = 0,
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
    ClientMetricsConfig = 7,
    GroupConfig = 8,
}

public enum ConfigType : sbyte
{
    Unknown = 0, Boolean = 1, String = 2, Int = 3, Short = 4, Long = 5, Double = 6, List = 7, Class = 8, Password = 9,
}

public sealed record ConfigSynonym(string Name, string? Value, ConfigSource Source);

public sealed record ConfigEntry(
    string Name, string? Value, ConfigSource Source, bool IsReadOnly, bool IsSensitive, bool IsDefault, ConfigType Type,
    string? Documentation, IReadOnlyList<ConfigSynonym> Synonyms);

/// <summary>IncrementalAlterConfigs operations (Kafka's numbering).</summary>
public enum AlterConfigOpType : sbyte { Set = 0, Delete = 1, Append = 2, Subtract = 3 }

/// <summary>One change to a config: set a value, delete an override (back to the default), or append/remove list items.</summary>
public sealed record ConfigAlteration(string Name, string? Value, AlterConfigOpType Op = AlterConfigOpType.Set)
{
    public static ConfigAlteration Set(string name, string value) => new(name, value);
    public static ConfigAlteration Delete(string name) => new(name, null, AlterConfigOpType.Delete);
    public static ConfigAlteration Append(string name, string value) => new(name, value, AlterConfigOpType.Append);
    public static ConfigAlteration Subtract(string name, string value) => new(name, value, AlterConfigOpType.Subtract);
}

/// <summary>A group as ListGroups reports it; state and type only from brokers recent enough to tell.</summary>
public sealed record GroupListing(string GroupId, string ProtocolType, string? State, string? Type);

/// <summary>
/// A group member. For "consumer" groups the subscribed topics and the assignment are decoded from the consumer
/// protocol; otherwise (or if they do not decode) they are null and only the raw bytes are given.
/// </summary>
public sealed record GroupMemberDescription(
    string MemberId, string? GroupInstanceId, string ClientId, string ClientHost,
    IReadOnlyList<string>? SubscribedTopics, IReadOnlyList<TopicPartition>? Assignment,
    ReadOnlyMemory<byte> MetadataBytes, ReadOnlyMemory<byte> AssignmentBytes);

/// <summary>A group: its state ("Empty", "Stable", "PreparingRebalance", "Dead" for unknown groups, ...), protocol and members.</summary>
public sealed record GroupDescription(string GroupId, string State, string ProtocolType, string Protocol, IReadOnlyList<GroupMemberDescription> Members, int Coordinator);

/// <summary>Which offset ListOffsets looks for.</summary>
public readonly record struct OffsetSpec
{
    private OffsetSpec(long value) => Value = value;

    /// <summary>The ListOffsets timestamp field: -2 earliest, -1 latest, -3 max timestamp, else milliseconds since the epoch.</summary>
    public long Value { get; }

    public static OffsetSpec Earliest { get; } = new(-2);
    public static OffsetSpec Latest { get; } = new(-1);
    /// <summary>The offset of the record with the largest timestamp (ListOffsets v7+).</summary>
    public static OffsetSpec MaxTimestamp { get; } = new(-3);
    /// <summary>The first offset whose timestamp is at or after <paramref name="time"/>.</summary>
    public static OffsetSpec ForTimestamp(DateTimeOffset time) =>
        time.ToUnixTimeMilliseconds() >= 0 ? new(time.ToUnixTimeMilliseconds()) : throw new ArgumentOutOfRangeException(nameof(time), "timestamps before 1970 cannot be looked up");

    /// <summary>Earliest, Latest and Timestamp offsets; sequence and custom offsets need no lookup and are refused.</summary>
    public static OffsetSpec From(Offset offset) => offset.Kind switch
    {
        OffsetKind.Earliest => Earliest,
        OffsetKind.Latest => Latest,
        OffsetKind.Timestamp => ForTimestamp(offset.TimestampValue),
        _ => throw new ArgumentException($"{offset} is not something ListOffsets looks up (earliest, latest or a timestamp)", nameof(offset)),
    };

    public override string ToString() => Value switch
    {
        -2 => "earliest",
        -1 => "latest",
        -3 => "max-timestamp",
        _ => "ts:" + DateTimeOffset.FromUnixTimeMilliseconds(Value).ToString("O", System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>A ListOffsets answer: the offset (-1 when no record is at or after the timestamp asked for) and the record's timestamp when known.</summary>
public sealed record ListOffsetsResultInfo(long Offset, DateTimeOffset? Timestamp, int? LeaderEpoch);
