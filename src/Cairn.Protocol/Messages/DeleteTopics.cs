using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DeleteTopics, MessageKind.Request, "0-6", Flexible = "4+")]
public sealed class DeleteTopicsRequest
{
    [KafkaField("6+")] public List<DeleteTopicState> Topics { get; set; } = [];
    [KafkaField("0-5")] public List<string> TopicNames { get; set; } = [];
    [KafkaField("0+")] public int TimeoutMs { get; set; }

    public sealed class DeleteTopicState
    {
        [KafkaField("6+", Nullable = "6+")] public string? Name { get; set; } = null;
        [KafkaField("6+")] public Guid TopicId { get; set; }
    }
}

[KafkaMessage(ApiKey.DeleteTopics, MessageKind.Response, "0-6", Flexible = "4+")]
public sealed class DeleteTopicsResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics", "TopicNames")] public List<DeletableTopicResult> Responses { get; set; } = [];

    public sealed class DeletableTopicResult
    {
        [KafkaField("0+", Nullable = "6+"), Echoes("Name", EchoesAttribute.Element)] public string? Name { get; set; } = "";
        [KafkaField("6+"), Echoes("TopicId")] public Guid TopicId { get; set; }
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("5+", Nullable = "5+")] public string? ErrorMessage { get; set; } = null;
    }
}
