using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.CreateTopics, MessageKind.Request, "0-7", Flexible = "5+")]
public sealed class CreateTopicsRequest
{
    [KafkaField("0+")] public List<CreatableTopic> Topics { get; set; } = [];
    [KafkaField("0+")] public int TimeoutMs { get; set; } = 60000;
    [KafkaField("1+")] public bool ValidateOnly { get; set; }

    public sealed class CreatableTopic
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public int NumPartitions { get; set; }
        [KafkaField("0+")] public short ReplicationFactor { get; set; }
        [KafkaField("0+")] public List<CreatableReplicaAssignment> Assignments { get; set; } = [];
        [KafkaField("0+")] public List<CreatableTopicConfig> Configs { get; set; } = [];

        public sealed class CreatableReplicaAssignment
        {
            [KafkaField("0+")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public List<int> BrokerIds { get; set; } = [];
        }

        public sealed class CreatableTopicConfig
        {
            [KafkaField("0+")] public string Name { get; set; } = "";
            [KafkaField("0+", Nullable = "0+")] public string? Value { get; set; } = "";
        }
    }
}

[KafkaMessage(ApiKey.CreateTopics, MessageKind.Response, "0-7", Flexible = "5+")]
public sealed class CreateTopicsResponse
{
    [KafkaField("2+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<CreatableTopicResult> Topics { get; set; } = [];

    public sealed class CreatableTopicResult
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("7+")] public Guid TopicId { get; set; }
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("1+", Nullable = "0+")] public string? ErrorMessage { get; set; } = "";
        [KafkaField("5+", Tag = 0, Tagged = "5+")] public short TopicConfigErrorCode { get; set; }
        [KafkaField("5+")] public int NumPartitions { get; set; } = -1;
        [KafkaField("5+")] public short ReplicationFactor { get; set; } = -1;
        [KafkaField("5+", Nullable = "5+")] public List<CreatableTopicConfigs>? Configs { get; set; } = [];

        public sealed class CreatableTopicConfigs
        {
            [KafkaField("5+")] public string Name { get; set; } = "";
            [KafkaField("5+", Nullable = "5+")] public string? Value { get; set; } = "";
            [KafkaField("5+")] public bool ReadOnly { get; set; }
            [KafkaField("5+")] public sbyte ConfigSource { get; set; } = -1;
            [KafkaField("5+")] public bool IsSensitive { get; set; }
        }
    }
}
