using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.SyncGroup, MessageKind.Request, "0-5", Flexible = "4+")]
public sealed class SyncGroupRequest
{
    [KafkaField("0+")] public string GroupId { get; set; } = "";
    [KafkaField("0+")] public int GenerationId { get; set; }
    [KafkaField("0+")] public string MemberId { get; set; } = "";
    [KafkaField("3+", Nullable = "3+")] public string? GroupInstanceId { get; set; } = null;
    [KafkaField("5+", Nullable = "5+")] public string? ProtocolType { get; set; } = null;
    [KafkaField("5+", Nullable = "5+")] public string? ProtocolName { get; set; } = null;
    [KafkaField("0+")] public List<SyncGroupRequestAssignment> Assignments { get; set; } = [];

    public sealed class SyncGroupRequestAssignment
    {
        [KafkaField("0+")] public string MemberId { get; set; } = "";
        [KafkaField("0+")] public byte[] Assignment { get; set; } = [];
    }
}

[KafkaMessage(ApiKey.SyncGroup, MessageKind.Response, "0-5", Flexible = "4+")]
public sealed class SyncGroupResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("5+", Nullable = "5+")] public string? ProtocolType { get; set; } = null;
    [KafkaField("5+", Nullable = "5+")] public string? ProtocolName { get; set; } = null;
    [KafkaField("0+")] public byte[] Assignment { get; set; } = [];
}
