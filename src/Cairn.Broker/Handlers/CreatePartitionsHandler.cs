using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>CreatePartitions: grows a topic to a new total partition count (never shrinks).</summary>
internal sealed class CreatePartitionsHandler(ClusterIdentity cluster, ITopicCatalog topics) : ApiHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    public override VersionRange Versions => new(0, 3);

    protected override ValueTask<CreatePartitionsResponse?> HandleAsync(RequestContext context, CreatePartitionsRequest request, CancellationToken cancellationToken)
    {
        var response = new CreatePartitionsResponse();
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            if (!topics.TryGetTopic(t.Name, out var topic))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.UnknownTopicOrPartition, $"The topic '{t.Name}' does not exist.");
                continue;
            }
            int current = topic.PartitionCount;
            if (t.Count < current)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidPartitions, $"Topic currently has {current} partitions, which is higher than the requested {t.Count}.");
                continue;
            }
            if (t.Count == current)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidPartitions, $"Topic already has {current} partitions.");
                continue;
            }
            if (t.Assignments is { } assignments &&
                (assignments.Count != t.Count - current || assignments.Any(a => a.BrokerIds.Count != 1 || a.BrokerIds[0] != cluster.NodeId)))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidReplicaAssignment, $"Assignments must name one replica, broker {cluster.NodeId}, for each new partition.");
                continue;
            }
            var added = topics.AddPartitions(t.Name, t.Count, request.ValidateOnly);
            result.ErrorCode = (short)added.Error;
            result.ErrorMessage = added.ErrorMessage;
        }
        return ValueTask.FromResult<CreatePartitionsResponse?>(response);
    }
}
