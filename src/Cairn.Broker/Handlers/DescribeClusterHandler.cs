using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>DescribeCluster: one broker, which is also the controller.</summary>
internal sealed class DescribeClusterHandler(ClusterIdentity cluster) : ApiHandler<DescribeClusterRequest, DescribeClusterResponse>
{
    private const sbyte BrokerEndpoint = 1;

    public override VersionRange Versions => new(0, 1);

    protected override ValueTask<DescribeClusterResponse?> HandleAsync(RequestContext context, DescribeClusterRequest request, CancellationToken cancellationToken)
    {
        var response = new DescribeClusterResponse { ClusterId = cluster.ClusterId, ControllerId = cluster.NodeId, EndpointType = request.EndpointType };
        if (request.EndpointType != BrokerEndpoint)
        {
            response.ErrorCode = (short)ErrorCode.UnsupportedEndpointType;
            response.ErrorMessage = $"endpoint type {request.EndpointType} is not served; use brokers (1)";
            return ValueTask.FromResult<DescribeClusterResponse?>(response);
        }
        response.Brokers.Add(new() { BrokerId = cluster.NodeId, Host = cluster.AdvertisedHost, Port = cluster.AdvertisedPort });
        return ValueTask.FromResult<DescribeClusterResponse?>(response);
    }
}
