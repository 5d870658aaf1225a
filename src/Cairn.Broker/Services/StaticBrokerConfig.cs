namespace Cairn.Broker.Services;

/// <summary>
/// The broker settings DescribeConfigs reports and DescribeLogDirs needs. Static: they are read at start-up and
/// cannot be altered while the broker runs.
/// </summary>
internal sealed record StaticBrokerConfig(int NodeId, int DefaultPartitions, bool AutoCreateTopics, int MaxRequestBytes, string DataDir,
    bool FlushOnAck, IReadOnlyDictionary<string, string> LogSettings);
