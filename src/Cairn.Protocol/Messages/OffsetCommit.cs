using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.OffsetCommit, MessageKind.Request, "0-9", Flexible = "8+")]
public sealed class OffsetCommitRequest
{
    [KafkaField("0+")] public string GroupId { get; set; } = "";
    [KafkaField("1+")] public int GenerationIdOrMemberEpoch { get; set; } = -1;
    [KafkaField("1+")] public string MemberId { get; set; } = "";
    [KafkaField("7+", Nullable = "7+")] public string? GroupInstanceId { get; set; } = null;
    [KafkaField("2-4")] public long RetentionTimeMs { get; set; } = -1;
    [KafkaField("0+")] public List<OffsetCommitRequestTopic> Topics { get; set; } = [];

    public sealed class OffsetCommitRequestTopic
    {
        [KafkaField("0+")] public string Name { get; set; } = "";
        [KafkaField("0+")] public List<OffsetCommitRequestPartition> Partitions { get; set; } = [];

        public sealed class OffsetCommitRequestPartition
        {
            [KafkaField("0+")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public long CommittedOffset { get; set; }
            [KafkaField("6+")] public int CommittedLeaderEpoch { get; set; } = -1;
            [KafkaField("1")] public long CommitTimestamp { get; set; } = -1;
            [KafkaField("0+", Nullable = "0+")] public string? CommittedMetadata { get; set; } = "";
        }
    }
}

[KafkaMessage(ApiKey.OffsetCommit, MessageKind.Response, "0-9", Flexible = "8+")]
public sealed class OffsetCommitResponse
{
    [KafkaField("3+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<OffsetCommitResponseTopic> Topics { get; set; } = [];

    public sealed class OffsetCommitResponseTopic
    {
        [KafkaField("0+"), Echoes("Name")] public string Name { get; set; } = "";
        [KafkaField("0+"), Echoes("Partitions")] public List<OffsetCommitResponsePartition> Partitions { get; set; } = [];

        public sealed class OffsetCommitResponsePartition
        {
            [KafkaField("0+"), Echoes("PartitionIndex")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public short ErrorCode { get; set; }
        }
    }
}
