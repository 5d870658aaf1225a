using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cairn.Storage;

/// <summary>A topic: its persistent id, effective config (broker defaults + overrides) and partition logs.</summary>
public sealed class TopicLog : ITopic
{
    private PartitionLog[] _partitions;
    private volatile LogConfig _config;
    private volatile ImmutableSortedDictionary<string, string> _overrides;

    internal TopicLog(string name, Guid topicId, LogConfig config, ImmutableSortedDictionary<string, string> overrides, PartitionLog[] partitions)
    {
        Name = name;
        TopicId = topicId;
        _config = config;
        _overrides = overrides;
        _partitions = partitions;
    }

    public string Name { get; }
    /// <summary>Random (v4) id, persisted; stable across restarts. For the wire: <c>TopicId.ToByteArray(bigEndian: true)</c>.</summary>
    public Guid TopicId { get; }
    /// <summary>Same as <see cref="TopicId"/>.</summary>
    public Guid Id => TopicId;
    public LogConfig Config => _config;
    /// <summary>The topic-level overrides as stored (canonical values).</summary>
    public IReadOnlyDictionary<string, string> ConfigOverrides => _overrides;
    public IReadOnlyList<PartitionLog> Partitions => Volatile.Read(ref _partitions);
    public int PartitionCount => Volatile.Read(ref _partitions).Length;
    public bool IsDeleted { get; internal set; }

    public PartitionLog? GetPartition(int partition)
    {
        var parts = Volatile.Read(ref _partitions);
        return (uint)partition < (uint)parts.Length ? parts[partition] : null;
    }

    public bool TryGetPartition(int partition, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PartitionLog? log)
    {
        log = GetPartition(partition);
        return log is not null;
    }

    IReadOnlyList<IPartitionLog> ITopic.Partitions => Partitions;

    bool ITopic.TryGetPartition(int partition, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPartitionLog? log)
    {
        log = GetPartition(partition);
        return log is not null;
    }

    /// <summary>Every known config with value and source, for DescribeConfigs.</summary>
    public IReadOnlyList<ConfigEntry> DescribeConfigs() => _config.Describe(_overrides);

    internal void SetPartitions(PartitionLog[] partitions) => Volatile.Write(ref _partitions, partitions);

    internal void SetConfig(LogConfig config, ImmutableSortedDictionary<string, string> overrides)
    {
        _overrides = overrides;
        _config = config;
        foreach (var p in Volatile.Read(ref _partitions)) p.UpdateConfig(config);
    }

    internal TopicMetadata ToMetadata() => new()
    {
        Version = 1,
        Name = Name,
        TopicId = TopicId,
        Partitions = PartitionCount,
        Configs = new SortedDictionary<string, string>(_overrides, StringComparer.Ordinal),
    };
}

/// <summary>The small per-topic metadata file (JSON, written atomically).</summary>
internal sealed class TopicMetadata
{
    [JsonPropertyName("version")] public int Version { get; set; } = 1;
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("topicId")] public Guid TopicId { get; set; }
    [JsonPropertyName("partitions")] public int Partitions { get; set; }
    [JsonPropertyName("configs")] public SortedDictionary<string, string> Configs { get; set; } = new(StringComparer.Ordinal);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public byte[] Serialize() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static TopicMetadata? TryParse(byte[] bytes)
    {
        try { return JsonSerializer.Deserialize<TopicMetadata>(bytes, Json); }
        catch (JsonException) { return null; }
    }
}
