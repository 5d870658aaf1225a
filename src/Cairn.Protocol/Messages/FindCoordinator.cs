using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.FindCoordinator, MessageKind.Request, "0-6", Flexible = "3+")]
public sealed class FindCoordinatorRequest
{
    [KafkaField("0-3")] public string Key { get; set; } = "";
    [KafkaField("1+")] public sbyte KeyType { get; set; }
    [KafkaField("4+")] public List<string> CoordinatorKeys { get; set; } = [];
}

[KafkaMessage(ApiKey.FindCoordinator, MessageKind.Response, "0-6", Flexible = "3+")]
public sealed class FindCoordinatorResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0-3")] public short ErrorCode { get; set; }
    [KafkaField("1-3", Nullable = "1-3")] public string? ErrorMessage { get; set; } = "";
    [KafkaField("0-3")] public int NodeId { get; set; }
    [KafkaField("0-3")] public string Host { get; set; } = "";
    [KafkaField("0-3")] public int Port { get; set; }
    [KafkaField("4+"), Echoes("CoordinatorKeys")] public List<Coordinator> Coordinators { get; set; } = [];

    public sealed class Coordinator
    {
        [KafkaField("4+"), Echoes(EchoesAttribute.Element)] public string Key { get; set; } = "";
        [KafkaField("4+")] public int NodeId { get; set; }
        [KafkaField("4+")] public string Host { get; set; } = "";
        [KafkaField("4+")] public int Port { get; set; }
        [KafkaField("4+")] public short ErrorCode { get; set; }
        [KafkaField("4+", Nullable = "4+")] public string? ErrorMessage { get; set; } = "";
    }
}
