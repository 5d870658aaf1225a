using System.Text.Json.Serialization;

namespace Cairn.Admin.Model;

// The JSON documents of topics, defined once for both producers of them: the admin HTTP API (GET /api/v1/topics[/{t}])
// and the command line (`cairn topics list|describe --output json`). Both serialize these records with AdminDocuments.Json
// (camelCase), so a script written against one reads the other. Values a side cannot know are null there (the command
// line cannot see segments; a size or offset a broker did not answer), never left out.
public static partial class AdminDocuments
{
    /// <summary>The topics of <c>GET /api/v1/topics</c> and of <c>cairn topics list|describe --output json</c>.</summary>
    public sealed record TopicsDto(IReadOnlyList<TopicDto> Topics);

    /// <summary>A topic with its partitions and, when described, its configs.</summary>
    /// <param name="Internal">whether the topic is internal (__consumer_offsets, ...); null when not known</param>
    /// <param name="Records">the sum of the partitions' records; null when a partition's offsets are unknown</param>
    /// <param name="SizeBytes">the sum of the partitions' sizes on disk; null when a partition's size is unknown</param>
    /// <param name="Configs">every config shown (sorted by name); left out of topic lists, which do not read configs</param>
    public sealed record TopicDto(string Name, Guid TopicId, int PartitionCount, bool? Internal, long? Records, long? SizeBytes,
        IReadOnlyList<PartitionDto> Partitions,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ConfigDto>? Configs);

    /// <summary>A partition: where it lives, its log start and end offsets, and its size.</summary>
    /// <param name="Leader">the node id of the leader (-1: none)</param>
    /// <param name="Records">log end minus log start (records trimmed by compaction still count); null when an offset is unknown</param>
    /// <param name="SizeBytes">the partition's size on disk; null when the broker did not tell</param>
    /// <param name="Segments">log segments (the admin API only: Kafka's protocol does not carry it)</param>
    /// <param name="Offline">true when the partition cannot be read or written (its files need an operator, or no replica is online)</param>
    /// <param name="OfflineReason">why it is offline (the admin API names the damaged files; Kafka's protocol carries only error codes); null when online</param>
    public sealed record PartitionDto(int Partition, int? Leader, IReadOnlyList<int>? Replicas, IReadOnlyList<int>? Isr,
        long? LogStartOffset, long? LogEndOffset, long? Records, long? SizeBytes, int? Segments, bool Offline, string? OfflineReason);

    /// <summary>A topic config. The value of a sensitive config is null.</summary>
    /// <param name="Source">where the value comes from, Kafka's DescribeConfigs names (TopicConfig, DefaultConfig, ...)</param>
    public sealed record ConfigDto(string Name, string? Value, string Source, bool Sensitive, bool ReadOnly);

    /// <summary>A partition's document; records from the offsets when both are known; offline when <paramref name="offlineReason"/> is given.</summary>
    public static PartitionDto PartitionBody(int partition, int? leader, IReadOnlyList<int>? replicas, IReadOnlyList<int>? isr,
        long? logStartOffset, long? logEndOffset, long? sizeBytes, int? segments, string? offlineReason = null) =>
        new(partition, leader, replicas, isr, logStartOffset, logEndOffset,
            logStartOffset is { } start && logEndOffset is { } end ? Math.Max(0, end - start) : null, sizeBytes, segments,
            offlineReason is not null, offlineReason);

    /// <summary>A topic's document, its counts and totals from <paramref name="partitions"/>.</summary>
    public static TopicDto TopicBody(string name, Guid topicId, bool? isInternal, IReadOnlyList<PartitionDto> partitions, IReadOnlyList<ConfigDto>? configs) =>
        new(name, topicId, partitions.Count, isInternal, SumOrNull(partitions.Select(p => p.Records)), SumOrNull(partitions.Select(p => p.SizeBytes)),
            partitions.OrderBy(p => p.Partition).ToList(), configs?.OrderBy(c => c.Name, StringComparer.Ordinal).ToList());

    // A total of parts one of which is unknown would be a wrong number, not a smaller one.
    private static long? SumOrNull(IEnumerable<long?> values)
    {
        long sum = 0;
        foreach (var v in values)
        {
            if (v is null) return null;
            sum += v.Value;
        }
        return sum;
    }
}
