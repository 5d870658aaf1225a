using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>OffsetDelete (KIP-496): removes committed offsets of topics the group's active members do not subscribe to.</summary>
internal sealed class OffsetDeleteHandler(ICommittedOffsets offsets) : ApiHandler<OffsetDeleteRequest, OffsetDeleteResponse>
{
    public override VersionRange Versions => new(0, 0);

    protected override async ValueTask<OffsetDeleteResponse?> HandleAsync(RequestContext context, OffsetDeleteRequest request, CancellationToken cancellationToken)
    {
        var partitions = request.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex))).ToList();
        var (error, results) = await offsets.DeleteOffsetsAsync(request.GroupId, partitions, cancellationToken);
        var response = new OffsetDeleteResponse { ErrorCode = (short)error };
        if (error != 0) return response;
        // A partition named twice gets its one result twice, as in Kafka (which answers from a map), instead of failing the request.
        var byPartition = new Dictionary<(string, int), ErrorCode>();
        foreach (var r in results) byPartition[(r.Topic, r.Partition)] = r.Error;
        foreach (var t in request.Topics)
        {
            response.Topics.Add(new()
            {
                Name = t.Name,
                Partitions = t.Partitions.Select(p => new OffsetDeleteResponse.OffsetDeleteResponseTopic.OffsetDeleteResponsePartition
                {
                    PartitionIndex = p.PartitionIndex, ErrorCode = (short)byPartition[(t.Name, p.PartitionIndex)],
                }).ToList(),
            });
        }
        return response;
    }
}
