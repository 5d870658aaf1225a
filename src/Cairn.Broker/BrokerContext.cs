using Cairn.Broker.Groups;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker;

/// <summary>What every handler shares: settings, the logs, cluster identity and broker-wide state.</summary>
public sealed class BrokerContext(BrokerOptions options, LogManager logs, string clusterId, string advertisedHost, int advertisedPort, ILoggerFactory loggerFactory)
{
    public BrokerOptions Options { get; } = options;
    public LogManager Logs { get; } = logs;
    public string ClusterId { get; } = clusterId;
    public string AdvertisedHost { get; } = advertisedHost;
    public int AdvertisedPort { get; } = advertisedPort;
    public int NodeId => Options.NodeId;
    public ILoggerFactory LoggerFactory { get; } = loggerFactory;
    public ProducerIdAllocator ProducerIds { get; } = new(options.DataDir);
    public FetchSessionCache FetchSessions { get; } = new();

    /// <summary>The group coordinator; set once at start-up, before the listener accepts clients.</summary>
    public GroupCoordinator Groups { get; internal set; } = null!;

    /// <summary>
    /// Finds a topic, creating it with the default partition count when auto-creation applies.
    /// Returns the topic or an error code (invalid name, unknown topic).
    /// </summary>
    public (TopicLog? Topic, Protocol.ErrorCode Error) GetOrAutoCreateTopic(string name, bool allowAutoCreate)
    {
        if (Logs.TryGetTopic(name, out var topic)) return (topic, Protocol.ErrorCode.None);
        if (!TopicNames.IsValid(name)) return (null, Protocol.ErrorCode.InvalidTopic);
        if (!allowAutoCreate || !Options.AutoCreateTopics) return (null, Protocol.ErrorCode.UnknownTopicOrPartition);
        var created = Logs.CreateTopic(name, Options.DefaultPartitions, null);
        if (created.Succeeded) return (created.Topic, Protocol.ErrorCode.None);
        // Lost a race with another creator: use the topic that now exists.
        if (created.Error == Protocol.ErrorCode.TopicAlreadyExists && Logs.TryGetTopic(name, out topic)) return (topic, Protocol.ErrorCode.None);
        return (null, created.Error);
    }
}
