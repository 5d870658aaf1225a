using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>SyncGroup: the leader hands in assignments; every member waits for its own.</summary>
internal sealed class SyncGroupHandler(IGroupCoordinator groups) : ApiHandler<SyncGroupRequest, SyncGroupResponse>
{
    public override VersionRange Versions => new(0, 5);

    protected override async ValueTask<SyncGroupResponse?> HandleAsync(RequestContext context, SyncGroupRequest request, CancellationToken cancellationToken)
    {
        var result = await groups.SyncGroupAsync(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId,
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
