using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DescribeCluster, MessageKind.Request, "0-1", Flexible = "0+")]
public sealed class DescribeClusterRequest
{
    [KafkaField("0+")] public bool IncludeClusterAuthorizedOperations { get; set; }
    [KafkaField("1+")] public sbyte EndpointType { get; set; } = 1;
}

[KafkaMessage(ApiKey.DescribeCluster, MessageKind.Response, "0-1", Flexible = "0+")]
public sealed class DescribeClusterResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("0+", Nullable = "0+")] public string? ErrorMessage { get; set; } = null;
    [KafkaField("1+")] public sbyte EndpointType { get; set; } = 1;
    [KafkaField("0+")] public string ClusterId { get; set; } = "";
    [KafkaField("0+")] public int ControllerId { get; set; } = -1;
    [KafkaField("0+")] public List<DescribeClusterBroker> Brokers { get; set; } = [];
    [KafkaField("0+")] public int ClusterAuthorizedOperations { get; set; } = -2147483648;

    public sealed class DescribeClusterBroker
    {
        [KafkaField("0+")] public int BrokerId { get; set; }
        [KafkaField("0+")] public string Host { get; set; } = "";
        [KafkaField("0+")] public int Port { get; set; }
        [KafkaField("0+", Nullable = "0+")] public string? Rack { get; set; } = null;
    }
}
