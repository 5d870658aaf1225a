using Cairn.Broker.Groups;
using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>JoinGroup: parks the member until the rebalance completes; v4+ first answers MEMBER_ID_REQUIRED.</summary>
internal sealed class JoinGroupHandler(IGroupCoordinator groups) : ApiHandler<JoinGroupRequest, JoinGroupResponse>
{
    public override VersionRange Versions => new(0, 9);

    protected override async ValueTask<JoinGroupResponse?> HandleAsync(RequestContext context, JoinGroupRequest request, CancellationToken cancellationToken)
    {
        var result = await groups.JoinGroupAsync(new JoinGroupRequestData(
            request.GroupId, request.MemberId, request.GroupInstanceId, request.ProtocolType,
            request.Protocols.Select(p => new MemberProtocol(p.Name, p.Metadata)).ToList(),
            request.SessionTimeoutMs,
            // v0 has no rebalance timeout: Kafka uses the session timeout.
            context.Version >= 1 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs,
            context.Header.ClientId ?? "", context.Connection.RemoteHost,
            RequireKnownMemberId: context.Version >= 4)).WaitAsync(cancellationToken);
        return new JoinGroupResponse
        {
            ErrorCode = (short)result.Error,
            GenerationId = result.GenerationId,
            ProtocolType = result.ProtocolType,
            ProtocolName = result.ProtocolName,
            Leader = result.LeaderId,
            MemberId = result.MemberId,
            SkipAssignment = result.SkipAssignment,
            Members = (result.Members ?? []).Select(m => new JoinGroupResponse.JoinGroupResponseMember
            {
                MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, Metadata = m.Metadata,
            }).ToList(),
        };
    }
}
