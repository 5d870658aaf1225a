using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;
using Cairn.Storage;

namespace Cairn.Broker.Handlers;

/// <summary>
/// IncrementalAlterConfigs (set, delete, append, subtract per entry) for topics. Broker configs are
/// static here: altering them is refused with a clear message.
/// </summary>
internal sealed class IncrementalAlterConfigsHandler(ITopicCatalog topics) : ApiHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>
{
    public override VersionRange Versions => new(0, 1);

    protected override ValueTask<IncrementalAlterConfigsResponse?> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request, CancellationToken cancellationToken)
    {
        var response = new IncrementalAlterConfigsResponse();
        foreach (var r in request.Resources)
        {
            var (error, message) = TopicConfigs.Alter(topics, r.ResourceType,
                logs => logs.AlterTopicConfig(r.ResourceName,
                    r.Configs.Select(c => new ConfigAlteration(c.Name, (AlterConfigOp)c.ConfigOperation, c.Value)).ToList(), request.ValidateOnly));
            response.Responses.Add(new() { ResourceType = r.ResourceType, ResourceName = r.ResourceName, ErrorCode = (short)error, ErrorMessage = message });
        }
        return ValueTask.FromResult<IncrementalAlterConfigsResponse?>(response);
    }
}

/// <summary>AlterConfigs (the older API): replaces a topic's whole set of overrides.</summary>
internal sealed class AlterConfigsHandler(ITopicCatalog topics) : ApiHandler<AlterConfigsRequest, AlterConfigsResponse>
{
    public override VersionRange Versions => new(0, 2);

    protected override ValueTask<AlterConfigsResponse?> HandleAsync(RequestContext context, AlterConfigsRequest request, CancellationToken cancellationToken)
    {
        var response = new AlterConfigsResponse();
        foreach (var r in request.Resources)
        {
            var (error, message) = TopicConfigs.Alter(topics, r.ResourceType,
                logs => logs.SetTopicConfig(r.ResourceName, r.Configs.Select(c => new KeyValuePair<string, string?>(c.Name, c.Value)).ToList(), request.ValidateOnly));
            response.Responses.Add(new() { ResourceType = r.ResourceType, ResourceName = r.ResourceName, ErrorCode = (short)error, ErrorMessage = message });
        }
        return ValueTask.FromResult<AlterConfigsResponse?>(response);
    }
}

internal static class TopicConfigs
{
    public static (ErrorCode Error, string? Message) Alter(ITopicCatalog topics, sbyte resourceType, Func<ITopicCatalog, TopicChange> alter)
    {
        switch (resourceType)
        {
            case DescribeConfigsHandler.TopicResource:
                var result = alter(topics);
                return (result.Error, result.ErrorMessage);
            case DescribeConfigsHandler.BrokerResource or DescribeConfigsHandler.BrokerLoggerResource:
                return (ErrorCode.InvalidRequest, "broker configs are static in Cairn: set them in the properties file, environment or flags and restart");
            default:
                return (ErrorCode.InvalidRequest, $"unsupported resource type {resourceType}");
        }
    }
}
