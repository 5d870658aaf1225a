using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.AlterConfigs, MessageKind.Request, "0-2", Flexible = "2+")]
public sealed class AlterConfigsRequest
{
    [KafkaField("0+")] public List<AlterConfigsResource> Resources { get; set; } = [];
    [KafkaField("0+")] public bool ValidateOnly { get; set; }

    public sealed class AlterConfigsResource
    {
        [KafkaField("0+")] public sbyte ResourceType { get; set; }
        [KafkaField("0+")] public string ResourceName { get; set; } = "";
        [KafkaField("0+")] public List<AlterableConfig> Configs { get; set; } = [];

        public sealed class AlterableConfig
        {
            [KafkaField("0+")] public string Name { get; set; } = "";
            [KafkaField("0+", Nullable = "0+")] public string? Value { get; set; } = "";
        }
    }
}

[KafkaMessage(ApiKey.AlterConfigs, MessageKind.Response, "0-2", Flexible = "2+")]
public sealed class AlterConfigsResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Resources")] public List<AlterConfigsResourceResponse> Responses { get; set; } = [];

    public sealed class AlterConfigsResourceResponse
    {
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("0+", Nullable = "0+")] public string? ErrorMessage { get; set; } = "";
        [KafkaField("0+"), Echoes("ResourceType")] public sbyte ResourceType { get; set; }
        [KafkaField("0+"), Echoes("ResourceName")] public string ResourceName { get; set; } = "";
    }
}
