using System.Diagnostics.CodeAnalysis;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Broker.Services;

/// <summary>
/// The topics handlers see: lookup by name or id, creation (explicit or automatic), deletion, partitions and configs.
/// Partition reads and appends go through the <see cref="PartitionLog"/>s the topics hand out.
/// </summary>
internal interface ITopicCatalog
{
    /// <summary>The partition count of a topic created without one (num.partitions).</summary>
    int DefaultPartitions { get; }

    IReadOnlyCollection<TopicLog> Topics { get; }

    bool TryGetTopic(string name, [NotNullWhen(true)] out TopicLog? topic);

    bool TryGetTopic(Guid topicId, [NotNullWhen(true)] out TopicLog? topic);

    /// <summary>
    /// Finds a topic, creating it with the default partition count when auto-creation applies.
    /// Returns the topic or an error code (invalid name, unknown topic).
    /// </summary>
    (TopicLog? Topic, ErrorCode Error) GetOrAutoCreateTopic(string name, bool allowAutoCreate);

    TopicOperationResult CreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs);

    TopicOperationResult ValidateCreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs);

    TopicOperationResult DeleteTopic(string name);

    TopicOperationResult AddPartitions(string name, int newTotal);

    TopicOperationResult SetTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly);

    TopicOperationResult AlterTopicConfig(string name, IEnumerable<ConfigAlteration> operations, bool validateOnly);
}

/// <summary>The catalogue over this broker's <see cref="LogManager"/>, with the broker's auto-creation policy.</summary>
internal sealed class LogTopicCatalog(LogManager logs, bool autoCreateTopics, int defaultPartitions) : ITopicCatalog
{
    public int DefaultPartitions => defaultPartitions;
    public IReadOnlyCollection<TopicLog> Topics => logs.Topics;

    public bool TryGetTopic(string name, [NotNullWhen(true)] out TopicLog? topic) => logs.TryGetTopic(name, out topic);
    public bool TryGetTopic(Guid topicId, [NotNullWhen(true)] out TopicLog? topic) => logs.TryGetTopic(topicId, out topic);

    public (TopicLog? Topic, ErrorCode Error) GetOrAutoCreateTopic(string name, bool allowAutoCreate)
    {
        if (logs.TryGetTopic(name, out var topic)) return (topic, ErrorCode.None);
        if (!TopicNames.IsValid(name)) return (null, ErrorCode.InvalidTopic);
        if (!allowAutoCreate || !autoCreateTopics) return (null, ErrorCode.UnknownTopicOrPartition);
        var created = logs.CreateTopic(name, defaultPartitions, null);
        if (created.Succeeded) return (created.Topic, ErrorCode.None);
        // Lost a race with another creator: use the topic that now exists.
        if (created.Error == ErrorCode.TopicAlreadyExists && logs.TryGetTopic(name, out topic)) return (topic, ErrorCode.None);
        return (null, created.Error);
    }

    public TopicOperationResult CreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs) =>
        logs.CreateTopic(name, partitions, configs);

    public TopicOperationResult ValidateCreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs) =>
        logs.ValidateCreateTopic(name, partitions, configs);

    public TopicOperationResult DeleteTopic(string name) => logs.DeleteTopic(name);
    public TopicOperationResult AddPartitions(string name, int newTotal) => logs.AddPartitions(name, newTotal);

    public TopicOperationResult SetTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly) =>
        logs.SetTopicConfig(name, overrides, validateOnly);

    public TopicOperationResult AlterTopicConfig(string name, IEnumerable<ConfigAlteration> operations, bool validateOnly) =>
        logs.AlterTopicConfig(name, operations, validateOnly);
}
