using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.Produce, MessageKind.Request, "0-11", Flexible = "9+")]
public sealed class ProduceRequest
{
    [KafkaField("3+", Nullable = "3+")] public string? TransactionalId { get; set; } = null;
    [KafkaField("0+")] public short Acks { get; set; }
    [KafkaField("0+")] public int TimeoutMs { get; set; }
    [KafkaField("0+")] public List<TopicProduceData> TopicData { get; set; } = [];

    public sealed class TopicProduceData
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public List<PartitionProduceData> PartitionData { get; set; } = [];

        public sealed class PartitionProduceData
        {
            [KafkaField("0+")] public int Index { get; set; }
            [KafkaField("0+", Nullable = "0+")] public RecordsPayload? Records { get; set; } = null;
        }
    }
}

[KafkaMessage(ApiKey.Produce, MessageKind.Response, "0-11", Flexible = "9+")]
public sealed class ProduceResponse
{
    [KafkaField("0+"), Echoes("TopicData")] public List<TopicProduceResponse> Responses { get; set; } = [];
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("10+", Tag = 0, Tagged = "10+")] public List<NodeEndpoint> NodeEndpoints { get; set; } = [];

    public sealed class TopicProduceResponse
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0+"), Echoes("PartitionData")] public List<PartitionProduceResponse> PartitionResponses { get; set; } = [];

        public sealed class PartitionProduceResponse
        {
            [KafkaField("0+"), Echoes("Index")] public int Index { get; set; }
            [KafkaField("0+")] public short ErrorCode { get; set; }
            [KafkaField("0+")] public long BaseOffset { get; set; }
            [KafkaField("2+")] public long LogAppendTimeMs { get; set; } = -1;
            [KafkaField("5+")] public long LogStartOffset { get; set; } = -1;
            [KafkaField("8+")] public List<BatchIndexAndErrorMessage> RecordErrors { get; set; } = [];
            [KafkaField("8+", Nullable = "8+")] public string? ErrorMessage { get; set; } = null;
            [KafkaField("10+", Tag = 0, Tagged = "10+")] public LeaderIdAndEpoch? CurrentLeader { get; set; } = null;

            public sealed class BatchIndexAndErrorMessage
            {
                [KafkaField("8+")] public int BatchIndex { get; set; }
                [KafkaField("8+", Nullable = "8+")] public string? BatchIndexErrorMessage { get; set; } = null;
            }

            public sealed class LeaderIdAndEpoch
            {
                [KafkaField("10+")] public int LeaderId { get; set; } = -1;
                [KafkaField("10+")] public int LeaderEpoch { get; set; } = -1;
            }
        }
    }

    public sealed class NodeEndpoint
    {
        [KafkaField("10+")] public int NodeId { get; set; }
        [KafkaField("10+")] public string Host { get; set; } = "";
        [KafkaField("10+")] public int Port { get; set; }
        [KafkaField("10+", Nullable = "10+")] public string? Rack { get; set; } = null;
    }
}
