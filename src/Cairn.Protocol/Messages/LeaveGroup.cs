using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.LeaveGroup, MessageKind.Request, "0-5", Flexible = "4+")]
public sealed class LeaveGroupRequest
{
    [KafkaField("0+")] public string GroupId { get; set; } = "";
    [KafkaField("0-2")] public string MemberId { get; set; } = "";
    [KafkaField("3+")] public List<MemberIdentity> Members { get; set; } = [];

    public sealed class MemberIdentity
    {
        [KafkaField("3+")] public string MemberId { get; set; } = "";
        [KafkaField("3+", Nullable = "3+")] public string? GroupInstanceId { get; set; } = null;
        [KafkaField("5+", Nullable = "5+")] public string? Reason { get; set; } = null;
    }
}

[KafkaMessage(ApiKey.LeaveGroup, MessageKind.Response, "0-5", Flexible = "4+")]
public sealed class LeaveGroupResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("3+"), Echoes("Members")] public List<MemberResponse> Members { get; set; } = [];

    public sealed class MemberResponse
    {
        [KafkaField("3+"), Echoes("MemberId")] public string MemberId { get; set; } = "";
        [KafkaField("3+", Nullable = "3+"), Echoes("GroupInstanceId")] public string? GroupInstanceId { get; set; } = "";
        [KafkaField("3+")] public short ErrorCode { get; set; }
    }
}
