using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.InitProducerId, MessageKind.Request, "0-5", Flexible = "2+")]
public sealed class InitProducerIdRequest
{
    [KafkaField("0+", Nullable = "0+")] public string? TransactionalId { get; set; } = "";
    [KafkaField("0+")] public int TransactionTimeoutMs { get; set; }
    [KafkaField("3+")] public long ProducerId { get; set; } = -1;
    [KafkaField("3+")] public short ProducerEpoch { get; set; } = -1;
}

[KafkaMessage(ApiKey.InitProducerId, MessageKind.Response, "0-5", Flexible = "2+")]
public sealed class InitProducerIdResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("0+")] public long ProducerId { get; set; } = -1;
    [KafkaField("0+")] public short ProducerEpoch { get; set; }
}
