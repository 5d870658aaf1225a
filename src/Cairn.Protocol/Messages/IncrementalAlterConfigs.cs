using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.IncrementalAlterConfigs, MessageKind.Request, "0-1", Flexible = "1+")]
public sealed class IncrementalAlterConfigsRequest
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
            [KafkaField("0+")] public sbyte ConfigOperation { get; set; }
            [KafkaField("0+", Nullable = "0+")] public string? Value { get; set; } = "";
        }
    }
}

[KafkaMessage(ApiKey.IncrementalAlterConfigs, MessageKind.Response, "0-1", Flexible = "1+")]
public sealed class IncrementalAlterConfigsResponse
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
