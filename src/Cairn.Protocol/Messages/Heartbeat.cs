using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.Heartbeat, MessageKind.Request, "0-4", Flexible = "4+")]
public sealed class HeartbeatRequest
{
    [KafkaField("0+")] public string GroupId { get; set; } = "";
    [KafkaField("0+")] public int GenerationId { get; set; }
    [KafkaField("0+")] public string MemberId { get; set; } = "";
    [KafkaField("3+", Nullable = "3+")] public string? GroupInstanceId { get; set; } = null;
}

[KafkaMessage(ApiKey.Heartbeat, MessageKind.Response, "0-4", Flexible = "4+")]
public sealed class HeartbeatResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
}
