using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.ListOffsets, MessageKind.Request, "0-10", Flexible = "6+")]
public sealed class ListOffsetsRequest
{
    [KafkaField("0+")] public int ReplicaId { get; set; }
    [KafkaField("2+")] public sbyte IsolationLevel { get; set; }
    [KafkaField("0+")] public List<ListOffsetsTopic> Topics { get; set; } = [];
    [KafkaField("10+")] public int TimeoutMs { get; set; }

    public sealed class ListOffsetsTopic
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public List<ListOffsetsPartition> Partitions { get; set; } = [];

        public sealed class ListOffsetsPartition
        {
            [KafkaField("0+")] public int PartitionIndex { get; set; }
            [KafkaField("4+")] public int CurrentLeaderEpoch { get; set; } = -1;
            [KafkaField("0+")] public long Timestamp { get; set; }
            [KafkaField("0")] public int MaxNumOffsets { get; set; } = 1;
        }
    }
}

[KafkaMessage(ApiKey.ListOffsets, MessageKind.Response, "0-10", Flexible = "6+")]
public sealed class ListOffsetsResponse
{
    [KafkaField("2+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<ListOffsetsTopicResponse> Topics { get; set; } = [];

    public sealed class ListOffsetsTopicResponse
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0+"), Echoes("Partitions")] public List<ListOffsetsPartitionResponse> Partitions { get; set; } = [];

        public sealed class ListOffsetsPartitionResponse
        {
            [KafkaField("0+"), Echoes("PartitionIndex")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public short ErrorCode { get; set; }
            [KafkaField("0")] public List<long> OldStyleOffsets { get; set; } = [];
            [KafkaField("1+")] public long Timestamp { get; set; } = -1;
            [KafkaField("1+")] public long Offset { get; set; } = -1;
            [KafkaField("4+")] public int LeaderEpoch { get; set; } = -1;
        }
    }
}
