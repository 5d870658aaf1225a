using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.Metadata, MessageKind.Request, "0-12", Flexible = "9+")]
public sealed class MetadataRequest
{
    [KafkaField("0+", Nullable = "1+")] public List<MetadataRequestTopic>? Topics { get; set; } = [];
    [KafkaField("4+")] public bool AllowAutoTopicCreation { get; set; } = true;
    [KafkaField("8-10")] public bool IncludeClusterAuthorizedOperations { get; set; }
    [KafkaField("8+")] public bool IncludeTopicAuthorizedOperations { get; set; }

    public sealed class MetadataRequestTopic
    {
        [KafkaField("10+")] public Guid TopicId { get; set; }
        [KafkaField("0+", Nullable = "10+")] public string? Name { get; set; } = "";
    }
}

[KafkaMessage(ApiKey.Metadata, MessageKind.Response, "0-12", Flexible = "9+")]
public sealed class MetadataResponse
{
    [KafkaField("3+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public List<MetadataResponseBroker> Brokers { get; set; } = [];
    [KafkaField("2+", Nullable = "2+")] public string? ClusterId { get; set; } = null;
    [KafkaField("1+")] public int ControllerId { get; set; } = -1;
    [KafkaField("0+"), Echoes("Topics")] public List<MetadataResponseTopic> Topics { get; set; } = [];
    [KafkaField("8-10")] public int ClusterAuthorizedOperations { get; set; } = -2147483648;

    public sealed class MetadataResponseBroker
    {
        [KafkaField("0+")] public int NodeId { get; set; }
        [KafkaField("0+")] public string Host { get; set; } = "";
        [KafkaField("0+")] public int Port { get; set; }
        [KafkaField("1+", Nullable = "1+")] public string? Rack { get; set; } = null;
    }

    public sealed class MetadataResponseTopic
    {
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("0+", Nullable = "12+"), Echoes("Name")] public string? Name { get; set; } = "";
        [KafkaField("10+"), Echoes("TopicId")] public Guid TopicId { get; set; }
        [KafkaField("1+")] public bool IsInternal { get; set; }
        [KafkaField("0+")] public List<MetadataResponsePartition> Partitions { get; set; } = [];
        [KafkaField("8+")] public int TopicAuthorizedOperations { get; set; } = -2147483648;

        public sealed class MetadataResponsePartition
        {
            [KafkaField("0+")] public short ErrorCode { get; set; }
            [KafkaField("0+")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public int LeaderId { get; set; }
            [KafkaField("7+")] public int LeaderEpoch { get; set; } = -1;
            [KafkaField("0+")] public List<int> ReplicaNodes { get; set; } = [];
            [KafkaField("0+")] public List<int> IsrNodes { get; set; } = [];
            [KafkaField("5+")] public List<int> OfflineReplicas { get; set; } = [];
        }
    }
}
