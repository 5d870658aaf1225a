using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DescribeConfigs, MessageKind.Request, "0-4", Flexible = "4+")]
public sealed class DescribeConfigsRequest
{
    [KafkaField("0+")] public List<DescribeConfigsResource> Resources { get; set; } = [];
    [KafkaField("1+")] public bool IncludeSynonyms { get; set; }
    [KafkaField("3+")] public bool IncludeDocumentation { get; set; }

    public sealed class DescribeConfigsResource
    {
        [KafkaField("0+")] public sbyte ResourceType { get; set; }
        [KafkaField("0+")] public string ResourceName { get; set; } = "";
        [KafkaField("0+", Nullable = "0+")] public List<string>? ConfigurationKeys { get; set; } = [];
    }
}

[KafkaMessage(ApiKey.DescribeConfigs, MessageKind.Response, "0-4", Flexible = "4+")]
public sealed class DescribeConfigsResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Resources")] public List<DescribeConfigsResult> Results { get; set; } = [];

    public sealed class DescribeConfigsResult
    {
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("0+", Nullable = "0+")] public string? ErrorMessage { get; set; } = "";
        [KafkaField("0+"), Echoes("ResourceType")] public sbyte ResourceType { get; set; }
        [KafkaField("0+"), Echoes("ResourceName")] public string ResourceName { get; set; } = "";
        [KafkaField("0+")] public List<DescribeConfigsResourceResult> Configs { get; set; } = [];

        public sealed class DescribeConfigsResourceResult
        {
            [KafkaField("0+")] public string Name { get; set; } = "";
            [KafkaField("0+", Nullable = "0+")] public string? Value { get; set; } = "";
            [KafkaField("0+")] public bool ReadOnly { get; set; }
            [KafkaField("0")] public bool IsDefault { get; set; }
            [KafkaField("1+")] public sbyte ConfigSource { get; set; } = -1;
            [KafkaField("0+")] public bool IsSensitive { get; set; }
            [KafkaField("1+")] public List<DescribeConfigsSynonym> Synonyms { get; set; } = [];
            [KafkaField("3+")] public sbyte ConfigType { get; set; }
            [KafkaField("3+", Nullable = "0+")] public string? Documentation { get; set; } = "";

            public sealed class DescribeConfigsSynonym
            {
                [KafkaField("1+")] public string Name { get; set; } = "";
                [KafkaField("1+", Nullable = "0+")] public string? Value { get; set; } = "";
                [KafkaField("1+")] public sbyte Source { get; set; }
            }
        }
    }
}
