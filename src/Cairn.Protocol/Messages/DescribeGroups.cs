using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DescribeGroups, MessageKind.Request, "0-5", Flexible = "5+")]
public sealed class DescribeGroupsRequest
{
    [KafkaField("0+")] public List<string> Groups { get; set; } = [];
    [KafkaField("3+")] public bool IncludeAuthorizedOperations { get; set; }
}

[KafkaMessage(ApiKey.DescribeGroups, MessageKind.Response, "0-5", Flexible = "5+")]
public sealed class DescribeGroupsResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Groups")] public List<DescribedGroup> Groups { get; set; } = [];

    public sealed class DescribedGroup
    {
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("0+"), Echoes(EchoesAttribute.Element)] public string GroupId { get; set; } = "";
        [KafkaField("0+")] public string GroupState { get; set; } = "";
        [KafkaField("0+")] public string ProtocolType { get; set; } = "";
        [KafkaField("0+")] public string ProtocolData { get; set; } = "";
        [KafkaField("0+")] public List<DescribedGroupMember> Members { get; set; } = [];
        [KafkaField("3+")] public int AuthorizedOperations { get; set; } = -2147483648;

        public sealed class DescribedGroupMember
        {
            [KafkaField("0+")] public string MemberId { get; set; } = "";
            [KafkaField("4+", Nullable = "4+")] public string? GroupInstanceId { get; set; } = null;
            [KafkaField("0+")] public string ClientId { get; set; } = "";
            [KafkaField("0+")] public string ClientHost { get; set; } = "";
            [KafkaField("0+")] public byte[] MemberMetadata { get; set; } = [];
            [KafkaField("0+")] public byte[] MemberAssignment { get; set; } = [];
        }
    }
}
