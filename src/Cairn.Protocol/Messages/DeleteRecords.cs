using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DeleteRecords, MessageKind.Request, "0-2", Flexible = "2+")]
public sealed class DeleteRecordsRequest
{
    [KafkaField("0+")] public List<DeleteRecordsTopic> Topics { get; set; } = [];
    [KafkaField("0+")] public int TimeoutMs { get; set; }

    public sealed class DeleteRecordsTopic
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public List<DeleteRecordsPartition> Partitions { get; set; } = [];

        public sealed class DeleteRecordsPartition
        {
            [KafkaField("0+")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public long Offset { get; set; }
        }
    }
}

[KafkaMessage(ApiKey.DeleteRecords, MessageKind.Response, "0-2", Flexible = "2+")]
public sealed class DeleteRecordsResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<DeleteRecordsTopicResult> Topics { get; set; } = [];

    public sealed class DeleteRecordsTopicResult
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0+"), Echoes("Partitions")] public List<DeleteRecordsPartitionResult> Partitions { get; set; } = [];

        public sealed class DeleteRecordsPartitionResult
        {
            [KafkaField("0+"), Echoes("PartitionIndex")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public long LowWatermark { get; set; }
            [KafkaField("0+")] public short ErrorCode { get; set; }
        }
    }
}
