using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.JoinGroup, MessageKind.Request, "0-9", Flexible = "6+")]
public sealed class JoinGroupRequest
{
    [KafkaField("0+")] public string GroupId { get; set; } = "";
    [KafkaField("0+")] public int SessionTimeoutMs { get; set; }
    [KafkaField("1+")] public int RebalanceTimeoutMs { get; set; } = -1;
    [KafkaField("0+")] public string MemberId { get; set; } = "";
    [KafkaField("5+", Nullable = "5+")] public string? GroupInstanceId { get; set; } = null;
    [KafkaField("0+")] public string ProtocolType { get; set; } = "";
    [KafkaField("0+")] public List<JoinGroupRequestProtocol> Protocols { get; set; } = [];
    [KafkaField("8+", Nullable = "8+")] public string? Reason { get; set; } = null;

    public sealed class JoinGroupRequestProtocol
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public byte[] Metadata { get; set; } = [];
    }
}

[KafkaMessage(ApiKey.JoinGroup, MessageKind.Response, "0-9", Flexible = "6+")]
public sealed class JoinGroupResponse
{
    [KafkaField("2+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("0+")] public int GenerationId { get; set; } = -1;
    [KafkaField("7+", Nullable = "7+")] public string? ProtocolType { get; set; } = null;
    [KafkaField("0+", Nullable = "7+")] public string? ProtocolName { get; set; } = "";
    [KafkaField("0+")] public string Leader { get; set; } = "";
    [KafkaField("9+")] public bool SkipAssignment { get; set; }
    [KafkaField("0+")] public string MemberId { get; set; } = "";
    [KafkaField("0+")] public List<JoinGroupResponseMember> Members { get; set; } = [];

    public sealed class JoinGroupResponseMember
    {
        [KafkaField("0+")] public string MemberId { get; set; } = "";
        [KafkaField("5+", Nullable = "5+")] public string? GroupInstanceId { get; set; } = null;
        [KafkaField("0+")] public byte[] Metadata { get; set; } = [];
    }
}
