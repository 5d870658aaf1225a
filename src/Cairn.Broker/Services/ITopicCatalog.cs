using System.Diagnostics.CodeAnalysis;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Broker.Services;

/// <summary>
/// The topics handlers see: lookup by name or id, creation (explicit or automatic), deletion, partitions and configs.
/// Partition reads and appends go through the <see cref="IPartitionLog"/>s the topics hand out.
/// </summary>
internal interface ITopicCatalog
{
    /// <summary>The partition count of a topic created without one (num.partitions).</summary>
    int DefaultPartitions { get; }

    IReadOnlyCollection<ITopic> Topics { get; }

    bool TryGetTopic(string name, [NotNullWhen(true)] out ITopic? topic);

    bool TryGetTopic(Guid topicId, [NotNullWhen(true)] out ITopic? topic);

    /// <summary>
    /// Finds a topic, creating it with the default partition count when auto-creation applies.
    /// Returns the topic or an error code (invalid name, unknown topic).
    /// </summary>
    (ITopic? Topic, ErrorCode Error) GetOrAutoCreateTopic(string name, bool allowAutoCreate);

    TopicChange CreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs);

    TopicChange ValidateCreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs);

    TopicChange DeleteTopic(string name);

    /// <summary>CreatePartitions; with <paramref name="validateOnly"/> every check runs (the partition limit included) and nothing changes.</summary>
    TopicChange AddPartitions(string name, int newTotal, bool validateOnly);

    TopicChange SetTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly);

    TopicChange AlterTopicConfig(string name, IEnumerable<ConfigAlteration> operations, bool validateOnly);
}

/// <summary>
/// Outcome of a change to the catalogue: the error code (None on success) with its message, and the topic as the
/// change left it (null on failure and when only validating a creation).
/// </summary>
internal readonly record struct TopicChange(ErrorCode Error, string? ErrorMessage, ITopic? Topic)
{
    public bool Succeeded => Error == ErrorCode.None;

    public static implicit operator TopicChange(TopicOperationResult result) => new(result.Error, result.ErrorMessage, result.Topic);
}

/// <summary>The catalogue over this broker's <see cref="LogManager"/>, with the broker's auto-creation policy.</summary>
internal sealed class LogTopicCatalog(LogManager logs, bool autoCreateTopics, int defaultPartitions) : ITopicCatalog
{
    public int DefaultPartitions => defaultPartitions;
    public IReadOnlyCollection<ITopic> Topics => logs.Topics;

    public bool TryGetTopic(string name, [NotNullWhen(true)] out ITopic? topic)
    {
        topic = logs.TryGetTopic(name, out var log) ? log : null;
        return topic is not null;
    }

    public bool TryGetTopic(Guid topicId, [NotNullWhen(true)] out ITopic? topic)
    {
        topic = logs.TryGetTopic(topicId, out var log) ? log : null;
        return topic is not null;
    }

    public (ITopic? Topic, ErrorCode Error) GetOrAutoCreateTopic(string name, bool allowAutoCreate)
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

    public TopicChange CreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs) =>
        logs.CreateTopic(name, partitions, configs);

    public TopicChange ValidateCreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs) =>
        logs.ValidateCreateTopic(name, partitions, configs);

    public TopicChange DeleteTopic(string name) => logs.DeleteTopic(name);
    public TopicChange AddPartitions(string name, int newTotal, bool validateOnly) => logs.AddPartitions(name, newTotal, validateOnly);

    public TopicChange SetTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly) =>
        logs.SetTopicConfig(name, overrides, validateOnly);

    public TopicChange AlterTopicConfig(string name, IEnumerable<ConfigAlteration> operations, bool validateOnly) =>
        logs.AlterTopicConfig(name, operations, validateOnly);
}
