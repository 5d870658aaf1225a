using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

internal sealed class HeartbeatHandler(IGroupCoordinator groups) : ApiHandler<HeartbeatRequest, HeartbeatResponse>
{
    public override VersionRange Versions => new(0, 4);

    protected override ValueTask<HeartbeatResponse?> HandleAsync(RequestContext context, HeartbeatRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult<HeartbeatResponse?>(new HeartbeatResponse
        {
            ErrorCode = (short)groups.Heartbeat(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId),
        });
}
