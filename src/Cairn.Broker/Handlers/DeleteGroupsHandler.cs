using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>DeleteGroups: only empty groups (NON_EMPTY_GROUP otherwise); their committed offsets go with them.</summary>
internal sealed class DeleteGroupsHandler(IGroupCoordinator groups) : ApiHandler<DeleteGroupsRequest, DeleteGroupsResponse>
{
    public override VersionRange Versions => new(0, 2);

    protected override async ValueTask<DeleteGroupsResponse?> HandleAsync(RequestContext context, DeleteGroupsRequest request, CancellationToken cancellationToken)
    {
        var response = new DeleteGroupsResponse();
        foreach (var id in request.GroupsNames)
            response.Results.Add(new() { GroupId = id, ErrorCode = (short)await groups.DeleteGroupAsync(id, cancellationToken) });
        return response;
    }
}
