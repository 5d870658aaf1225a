using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>FindCoordinator: this broker coordinates every group; v4+ asks for several keys at once.</summary>
internal sealed class FindCoordinatorHandler(ClusterIdentity cluster) : ApiHandler<FindCoordinatorRequest, FindCoordinatorResponse>
{
    public override VersionRange Versions => new(0, 6);

    protected override ValueTask<FindCoordinatorResponse?> HandleAsync(RequestContext context, FindCoordinatorRequest request, CancellationToken cancellationToken)
    {
        var response = new FindCoordinatorResponse { ErrorMessage = null };
        if (context.Version >= 4)
        {
            foreach (var key in request.CoordinatorKeys)
                response.Coordinators.Add(new() { Key = key, NodeId = cluster.NodeId, Host = cluster.AdvertisedHost, Port = cluster.AdvertisedPort, ErrorMessage = null });
        }
        else
        {
            (response.NodeId, response.Host, response.Port) = (cluster.NodeId, cluster.AdvertisedHost, cluster.AdvertisedPort);
        }
        return ValueTask.FromResult<FindCoordinatorResponse?>(response);
    }
}
