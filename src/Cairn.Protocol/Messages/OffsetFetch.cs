using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.OffsetFetch, MessageKind.Request, "0-9", Flexible = "6+")]
public sealed class OffsetFetchRequest
{
    [KafkaField("0-7")] public string GroupId { get; set; } = "";
    [KafkaField("0-7", Nullable = "2-7")] public List<OffsetFetchRequestTopic>? Topics { get; set; } = [];
    [KafkaField("8+")] public List<OffsetFetchRequestGroup> Groups { get; set; } = [];
    [KafkaField("7+")] public bool RequireStable { get; set; }

    public sealed class OffsetFetchRequestTopic
    {
        [KafkaField("0-7")] public string Name { get; set; } = "";
        [KafkaField("0-7")] public List<int> PartitionIndexes { get; set; } = [];
    }

    public sealed class OffsetFetchRequestGroup
    {
        [KafkaField("8+")] public string GroupId { get; set; } = "";
        [KafkaField("9+", Nullable = "9+")] public string? MemberId { get; set; } = null;
        [KafkaField("9+")] public int MemberEpoch { get; set; } = -1;
        [KafkaField("8+", Nullable = "8+")] public List<OffsetFetchRequestTopics>? Topics { get; set; } = [];

        public sealed class OffsetFetchRequestTopics
        {
            [KafkaField("8+")] public string Name { get; set; } = "";
            [KafkaField("8+")] public List<int> PartitionIndexes { get; set; } = [];
        }
    }
}

[KafkaMessage(ApiKey.OffsetFetch, MessageKind.Response, "0-9", Flexible = "6+")]
public sealed class OffsetFetchResponse
{
    [KafkaField("3+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0-7"), Echoes("Topics")] public List<OffsetFetchResponseTopic> Topics { get; set; } = [];
    [KafkaField("2-7")] public short ErrorCode { get; set; }
    [KafkaField("8+"), Echoes("Groups")] public List<OffsetFetchResponseGroup> Groups { get; set; } = [];

    public sealed class OffsetFetchResponseTopic
    {
        [KafkaField("0-7"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0-7"), Echoes("PartitionIndexes")] public List<OffsetFetchResponsePartition> Partitions { get; set; } = [];

        public sealed class OffsetFetchResponsePartition
        {
            [KafkaField("0-7"), Echoes(EchoesAttribute.Element)] public int PartitionIndex { get; set; }
            [KafkaField("0-7")] public long CommittedOffset { get; set; }
            [KafkaField("5-7")] public int CommittedLeaderEpoch { get; set; } = -1;
            [KafkaField("0-7", Nullable = "0-7")] public string? Metadata { get; set; } = "";
            [KafkaField("0-7")] public short ErrorCode { get; set; }
        }
    }

    public sealed class OffsetFetchResponseGroup
    {
        [KafkaField("8+"), Echoes("GroupId")] public string GroupId { get; set; } = "";
        [KafkaField("8+"), Echoes("Topics")] public List<OffsetFetchResponseTopics> Topics { get; set; } = [];
        [KafkaField("8+")] public short ErrorCode { get; set; }

        public sealed class OffsetFetchResponseTopics
        {
            [KafkaField("8+"), Echoes("Name")] public string Name { get; set; } = "";
            [KafkaField("8+"), Echoes("PartitionIndexes")] public List<OffsetFetchResponsePartitions> Partitions { get; set; } = [];

            public sealed class OffsetFetchResponsePartitions
            {
                [KafkaField("8+"), Echoes(EchoesAttribute.Element)] public int PartitionIndex { get; set; }
                [KafkaField("8+")] public long CommittedOffset { get; set; }
                [KafkaField("8+")] public int CommittedLeaderEpoch { get; set; } = -1;
                [KafkaField("8+", Nullable = "8+")] public string? Metadata { get; set; } = "";
                [KafkaField("8+")] public short ErrorCode { get; set; }
            }
        }
    }
}
