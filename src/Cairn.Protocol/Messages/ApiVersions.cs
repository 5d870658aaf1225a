using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.ApiVersions, MessageKind.Request, "0-4", Flexible = "3+")]
public sealed class ApiVersionsRequest
{
    [KafkaField("3+")] public string ClientSoftwareName { get; set; } = "";
    [KafkaField("3+")] public string ClientSoftwareVersion { get; set; } = "";
}

[KafkaMessage(ApiKey.ApiVersions, MessageKind.Response, "0-4", Flexible = "3+")]
public sealed class ApiVersionsResponse
{
    [KafkaField("0+")] public short ErrorCode { get; set; }
    [KafkaField("0+")] public List<ApiVersion> ApiKeys { get; set; } = [];
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("3+", Tag = 0, Tagged = "3+")] public List<SupportedFeatureKey> SupportedFeatures { get; set; } = [];
    [KafkaField("3+", Tag = 1, Tagged = "3+")] public long FinalizedFeaturesEpoch { get; set; } = -1;
    [KafkaField("3+", Tag = 2, Tagged = "3+")] public List<FinalizedFeatureKey> FinalizedFeatures { get; set; } = [];
    [KafkaField("3+", Tag = 3, Tagged = "3+")] public bool ZkMigrationReady { get; set; }

    public sealed class ApiVersion
    {
        [KafkaField("0+")] public short ApiKey { get; set; }
        [KafkaField("0+")] public short MinVersion { get; set; }
        [KafkaField("0+")] public short MaxVersion { get; set; }
    }

    public sealed class SupportedFeatureKey
    {
        [KafkaField("3+")] public string Name { get; set; } = "";
        [KafkaField("3+")] public short MinVersion { get; set; }
        [KafkaField("3+")] public short MaxVersion { get; set; }
    }

    public sealed class FinalizedFeatureKey
    {
        [KafkaField("3+")] public string Name { get; set; } = "";
        [KafkaField("3+")] public short MaxVersionLevel { get; set; }
        [KafkaField("3+")] public short MinVersionLevel { get; set; }
    }
}
