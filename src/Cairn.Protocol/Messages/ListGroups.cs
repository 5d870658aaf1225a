using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.ListGroups, MessageKind.Request, "0-5", Flexible = "3+")]
public sealed class ListGroupsRequest
{
    [KafkaField("4+")] public List<string> StatesFilter { get; set; } = [];
    [KafkaField("5+")] public List<string> TypesFilter { get; set; } = [];
}

[KafkaMessage(ApiKey.ListGroups, MessageKind.Response, "0-5", Flexible = "3+")]
public sealed class ListGroupsResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("0+")] public List<ListedGroup> Groups { get; set; } = [];

    public sealed class ListedGroup
    {
        [KafkaField("0+")] public string GroupId { get; set; } = "";
        [KafkaField("0+")] public string ProtocolType { get; set; } = "";
        [KafkaField("4+")] public string GroupState { get; set; } = "";
        [KafkaField("5+")] public string GroupType { get; set; } = "";
    }
}
