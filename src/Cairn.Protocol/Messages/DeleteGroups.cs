using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DeleteGroups, MessageKind.Request, "0-2", Flexible = "2+")]
public sealed class DeleteGroupsRequest
{
    [KafkaField("0+")] public List<string> GroupsNames { get; set; } = [];
}

[KafkaMessage(ApiKey.DeleteGroups, MessageKind.Response, "0-2", Flexible = "2+")]
public sealed class DeleteGroupsResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("GroupsNames")] public List<DeletableGroupResult> Results { get; set; } = [];

    public sealed class DeletableGroupResult
    {
        [KafkaField("0+"), Echoes(EchoesAttribute.Element)] public string GroupId { get; set; } = "";
        [KafkaField("0+")] public short ErrorCode { get; set; }
    }
}
