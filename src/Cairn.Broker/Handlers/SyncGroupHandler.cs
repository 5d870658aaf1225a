using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>SyncGroup: the leader hands in assignments; every member waits for its own.</summary>
public sealed class SyncGroupHandler(BrokerContext broker) : ApiHandler<SyncGroupRequest, SyncGroupResponse>
{
    public override VersionRange Versions => new(0, 5);

    protected override async ValueTask<SyncGroupResponse?> HandleAsync(RequestContext context, SyncGroupRequest request, CancellationToken cancellationToken)
    {
        var result = await broker.Groups.SyncGroupAsync(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId,
            request.ProtocolType, request.ProtocolName,
            request.Assignments.Select(a => (a.MemberId, a.Assignment)).ToList()).WaitAsync(cancellationToken);
        return new SyncGroupResponse
        {
            ErrorCode = (short)result.Error,
            ProtocolType = result.ProtocolType,
            ProtocolName = result.ProtocolName,
            Assignment = result.Assignment ?? [],
        };
    }
}
