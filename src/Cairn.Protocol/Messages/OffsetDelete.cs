using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.OffsetDelete, MessageKind.Request, "0", Flexible = "none")]
public sealed class OffsetDeleteRequest
{
    [KafkaField("0+")] public string GroupId { get; set; } = "";
    [KafkaField("0+")] public List<OffsetDeleteRequestTopic> Topics { get; set; } = [];

    public sealed class OffsetDeleteRequestTopic
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public List<OffsetDeleteRequestPartition> Partitions { get; set; } = [];

        public sealed class OffsetDeleteRequestPartition
        {
            [KafkaField("0+")] public int PartitionIndex { get; set; }
        }
    }
}

[KafkaMessage(ApiKey.OffsetDelete, MessageKind.Response, "0", Flexible = "none")]
public sealed class OffsetDeleteResponse
{
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<OffsetDeleteResponseTopic> Topics { get; set; } = [];

    public sealed class OffsetDeleteResponseTopic
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0+"), Echoes("Partitions")] public List<OffsetDeleteResponsePartition> Partitions { get; set; } = [];

        public sealed class OffsetDeleteResponsePartition
        {
            [KafkaField("0+"), Echoes("PartitionIndex")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public short ErrorCode { get; set; }
        }
    }
}
