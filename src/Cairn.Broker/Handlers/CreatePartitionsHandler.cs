using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>CreatePartitions: grows a topic to a new total partition count (never shrinks).</summary>
public sealed class CreatePartitionsHandler(BrokerContext broker) : ApiHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    public override VersionRange Versions => new(0, 3);

    protected override ValueTask<CreatePartitionsResponse?> HandleAsync(RequestContext context, CreatePartitionsRequest request, CancellationToken cancellationToken)
    {
        var response = new CreatePartitionsResponse();
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            if (!broker.Logs.TryGetTopic(t.Name, out var topic))
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
                (assignments.Count != t.Count - current || assignments.Any(a => a.BrokerIds.Count != 1 || a.BrokerIds[0] != broker.NodeId)))
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)ErrorCode.InvalidReplicaAssignment, $"Assignments must name one replica, broker {broker.NodeId}, for each new partition.");
                continue;
            }
            if (request.ValidateOnly) continue;
            var added = broker.Logs.AddPartitions(t.Name, t.Count);
            result.ErrorCode = (short)added.Error;
            result.ErrorMessage = added.ErrorMessage;
        }
        return ValueTask.FromResult<CreatePartitionsResponse?>(response);
    }
}
