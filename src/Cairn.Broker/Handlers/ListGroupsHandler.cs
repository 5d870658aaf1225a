using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>ListGroups, optionally filtered by state (v4+) and type (v5+: every group here is "classic").</summary>
internal sealed class ListGroupsHandler(IGroupCoordinator groups) : ApiHandler<ListGroupsRequest, ListGroupsResponse>
{
    private const string ClassicType = "classic";

    public override VersionRange Versions => new(0, 5);

    protected override ValueTask<ListGroupsResponse?> HandleAsync(RequestContext context, ListGroupsRequest request, CancellationToken cancellationToken)
    {
        var response = new ListGroupsResponse();
        bool typeWanted = request.TypesFilter.Count == 0 || request.TypesFilter.Any(t => t.Equals(ClassicType, StringComparison.OrdinalIgnoreCase));
        if (!typeWanted) return ValueTask.FromResult<ListGroupsResponse?>(response);
        foreach (var g in groups.ListGroups())
        {
            var state = g.State.ToString();
            if (request.StatesFilter.Count > 0 && !request.StatesFilter.Any(s => s.Equals(state, StringComparison.OrdinalIgnoreCase))) continue;
            response.Groups.Add(new() { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = state, GroupType = ClassicType });
        }
        return ValueTask.FromResult<ListGroupsResponse?>(response);
    }
}
