using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;
using Cairn.Storage;

namespace Cairn.Broker.Handlers;

/// <summary>DescribeConfigs for topics (every effective config with its source) and for this broker.</summary>
internal sealed class DescribeConfigsHandler(StaticBrokerConfig settings, ITopicCatalog topics) : ApiHandler<DescribeConfigsRequest, DescribeConfigsResponse>
{
    public const sbyte TopicResource = 2, BrokerResource = 4, BrokerLoggerResource = 8;

    public override VersionRange Versions => new(0, 4);

    protected override ValueTask<DescribeConfigsResponse?> HandleAsync(RequestContext context, DescribeConfigsRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult
            {
                ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null,
            };
            response.Results.Add(result);
            IReadOnlyList<ConfigEntry> entries;
            switch (resource.ResourceType)
            {
                case TopicResource when topics.TryGetTopic(resource.ResourceName, out var topic):
                    entries = topic.DescribeConfigs();
                    break;
                case TopicResource:
                    (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.UnknownTopicOrPartition, $"Topic {resource.ResourceName} does not exist");
                    continue;
                case BrokerResource when resource.ResourceName == "" || resource.ResourceName == settings.NodeId.ToString():
                    entries = BrokerEntries();
                    break;
                case BrokerResource:
                    (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidRequest, $"Broker {resource.ResourceName} is not this broker ({settings.NodeId})");
                    continue;
                default:
                    (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidRequest, $"Unsupported resource type {resource.ResourceType}");
                    continue;
            }
            foreach (var e in entries)
            {
                if (resource.ConfigurationKeys is { } keys && !keys.Contains(e.Name)) continue;
                result.Configs.Add(new()
                {
                    Name = e.Name,
                    Value = e.Value,
                    ReadOnly = e.ReadOnly,
                    IsDefault = e.Source == ConfigSource.DefaultConfig,
                    ConfigSource = (sbyte)e.Source,
                    IsSensitive = e.IsSensitive,
                    ConfigType = (sbyte)e.Type,
                    Documentation = null,
                    Synonyms = request.IncludeSynonyms
                        ? [new() { Name = e.Name, Value = e.Value, Source = (sbyte)e.Source }]
                        : [],
                });
            }
        }
        return ValueTask.FromResult<DescribeConfigsResponse?>(response);
    }

    private IReadOnlyList<ConfigEntry> BrokerEntries()
    {
        var o = settings;
        var list = new List<ConfigEntry>
        {
            new("broker.id", o.NodeId.ToString(), ConfigSource.StaticBrokerConfig, ConfigType.Int, ReadOnly: true),
            new("node.id", o.NodeId.ToString(), ConfigSource.StaticBrokerConfig, ConfigType.Int, ReadOnly: true),
            new("num.partitions", o.DefaultPartitions.ToString(), ConfigSource.StaticBrokerConfig, ConfigType.Int, ReadOnly: true),
            new("auto.create.topics.enable", o.AutoCreateTopics ? "true" : "false", ConfigSource.StaticBrokerConfig, ConfigType.Boolean, ReadOnly: true),
            new("socket.request.max.bytes", o.MaxRequestBytes.ToString(), ConfigSource.StaticBrokerConfig, ConfigType.Int, ReadOnly: true),
            new("log.dirs", o.DataDir, ConfigSource.StaticBrokerConfig, ConfigType.String, ReadOnly: true),
            new("log.flush.on.ack", o.FlushOnAck ? "true" : "false", ConfigSource.StaticBrokerConfig, ConfigType.Boolean, ReadOnly: true),
            new("default.replication.factor", "1", ConfigSource.DefaultConfig, ConfigType.Int, ReadOnly: true),
        };
        foreach (var (name, value) in o.LogSettings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            list.Add(new(name, value, ConfigSource.StaticBrokerConfig, ConfigType.String, ReadOnly: true));
        return list;
    }
}
