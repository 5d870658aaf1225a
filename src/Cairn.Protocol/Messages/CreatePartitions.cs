using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.CreatePartitions, MessageKind.Request, "0-3", Flexible = "2+")]
public sealed class CreatePartitionsRequest
{
    [KafkaField("0+")] public List<CreatePartitionsTopic> Topics { get; set; } = [];
    [KafkaField("0+")] public int TimeoutMs { get; set; }
    [KafkaField("0+")] public bool ValidateOnly { get; set; }

    public sealed class CreatePartitionsTopic
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public int Count { get; set; }
        [KafkaField("0+", Nullable = "0+")] public List<CreatePartitionsAssignment>? Assignments { get; set; } = [];

        public sealed class CreatePartitionsAssignment
        {
            [KafkaField("0+")] public List<int> BrokerIds { get; set; } = [];
        }
    }
}

[KafkaMessage(ApiKey.CreatePartitions, MessageKind.Response, "0-3", Flexible = "2+")]
public sealed class CreatePartitionsResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<CreatePartitionsTopicResult> Results { get; set; } = [];

    public sealed class CreatePartitionsTopicResult
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("0+", Nullable = "0+")] public string? ErrorMessage { get; set; } = null;
    }
}
