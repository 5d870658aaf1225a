using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>LeaveGroup: one member (v0-2) or a batch of members, static ones by instance id (v3+).</summary>
internal sealed class LeaveGroupHandler(IGroupCoordinator groups) : ApiHandler<LeaveGroupRequest, LeaveGroupResponse>
{
    public override VersionRange Versions => new(0, 5);

    protected override async ValueTask<LeaveGroupResponse?> HandleAsync(RequestContext context, LeaveGroupRequest request, CancellationToken cancellationToken)
    {
        var leaving = context.Version >= 3
            ? request.Members.Select(m => (m.MemberId, m.GroupInstanceId)).ToList()
            : [(request.MemberId, (string?)null)];
        var (error, members) = await groups.LeaveGroupAsync(request.GroupId, leaving);
        var response = new LeaveGroupResponse { ErrorCode = (short)error };
        if (context.Version >= 3)
        {
            response.Members = members.Select(m => new LeaveGroupResponse.MemberResponse
            {
                MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, ErrorCode = (short)m.Error,
            }).ToList();
        }
        else if (error == 0 && members.Count == 1)
        {
            response.ErrorCode = (short)members[0].Error; // v0-2 carry the single member's outcome at the top
        }
        return response;
    }
}
