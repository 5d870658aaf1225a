using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>DescribeGroups: state, protocol and members with their metadata and assignment. Unknown groups read as Dead.</summary>
internal sealed class DescribeGroupsHandler(IGroupCoordinator groups) : ApiHandler<DescribeGroupsRequest, DescribeGroupsResponse>
{
    private const int AllGroupOperations = 0b0001_0000_1000_1000; // read, delete, describe

    public override VersionRange Versions => new(0, 5);

    protected override ValueTask<DescribeGroupsResponse?> HandleAsync(RequestContext context, DescribeGroupsRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeGroupsResponse();
        foreach (var id in request.Groups)
        {
            var g = groups.DescribeGroup(id);
            response.Groups.Add(new()
            {
                GroupId = g.GroupId,
                GroupState = g.State.ToString(),
                ProtocolType = g.ProtocolType,
                ProtocolData = g.Protocol,
                AuthorizedOperations = request.IncludeAuthorizedOperations ? AllGroupOperations : int.MinValue,
                Members = g.Members.Select(m => new DescribeGroupsResponse.DescribedGroup.DescribedGroupMember
                {
                    MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, ClientId = m.ClientId, ClientHost = m.ClientHost,
                    MemberMetadata = m.Metadata, MemberAssignment = m.Assignment,
                }).ToList(),
            });
        }
        return ValueTask.FromResult<DescribeGroupsResponse?>(response);
    }
}
