using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.Fetch, MessageKind.Request, "0-17", Flexible = "12+")]
public sealed class FetchRequest
{
    [KafkaField("12+", Nullable = "12+", Tag = 0, Tagged = "12+")] public string? ClusterId { get; set; } = null;
    [KafkaField("0-14")] public int ReplicaId { get; set; } = -1;
    [KafkaField("15+", Tag = 1, Tagged = "15+")] public ReplicaStateData? ReplicaState { get; set; } = null;
    [KafkaField("0+")] public int MaxWaitMs { get; set; }
    [KafkaField("0+")] public int MinBytes { get; set; }
    [KafkaField("3+")] public int MaxBytes { get; set; } = 2147483647;
    [KafkaField("4+")] public sbyte IsolationLevel { get; set; }
    [KafkaField("7+")] public int SessionId { get; set; }
    [KafkaField("7+")] public int SessionEpoch { get; set; } = -1;
    [KafkaField("0+")] public List<FetchTopic> Topics { get; set; } = [];
    [KafkaField("7+")] public List<ForgottenTopic> ForgottenTopicsData { get; set; } = [];
    [KafkaField("11+")] public string RackId { get; set; } = "";

    public sealed class ReplicaStateData
    {
        [KafkaField("15+")] public int ReplicaId { get; set; } = -1;
        [KafkaField("15+")] public long ReplicaEpoch { get; set; } = -1;
    }

    public sealed class FetchTopic
    {
        [KafkaField("0-12")] public string Topic { get; set; } = "";
        [KafkaField("13+")] public Guid TopicId { get; set; }
        [KafkaField("0+")] public List<FetchPartition> Partitions { get; set; } = [];

        public sealed class FetchPartition
        {
            [KafkaField("0+")] public int Partition { get; set; }
            [KafkaField("9+")] public int CurrentLeaderEpoch { get; set; } = -1;
            [KafkaField("0+")] public long FetchOffset { get; set; }
            [KafkaField("12+")] public int LastFetchedEpoch { get; set; } = -1;
            [KafkaField("5+")] public long LogStartOffset { get; set; } = -1;
            [KafkaField("0+")] public int PartitionMaxBytes { get; set; }
            [KafkaField("17+", Tag = 0, Tagged = "17+")] public Guid ReplicaDirectoryId { get; set; }
        }
    }

    public sealed class ForgottenTopic
    {
        [KafkaField("7-12")] public string Topic { get; set; } = "";
        [KafkaField("13+")] public Guid TopicId { get; set; }
        [KafkaField("7+")] public List<int> Partitions { get; set; } = [];
    }
}

[KafkaMessage(ApiKey.Fetch, MessageKind.Response, "0-17", Flexible = "12+")]
public sealed class FetchResponse
{
    [KafkaField("1+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("7+")] public short ErrorCode { get; set; }
    [KafkaField("7+")] public int SessionId { get; set; }
    [KafkaField("0+"), Echoes("Topics")] public List<FetchableTopicResponse> Responses { get; set; } = [];
    [KafkaField("16+", Tag = 0, Tagged = "16+")] public List<NodeEndpoint> NodeEndpoints { get; set; } = [];

    public sealed class FetchableTopicResponse
    {
        [KafkaField("0-12"), Echoes("Topic")] public string Topic { get; set; } = "";
        [KafkaField("13+"), Echoes("TopicId")] public Guid TopicId { get; set; }
        [KafkaField("0+"), Echoes("Partitions")] public List<PartitionData> Partitions { get; set; } = [];

        public sealed class PartitionData
        {
            [KafkaField("0+"), Echoes("Partition")] public int PartitionIndex { get; set; }
            [KafkaField("0+")] public short ErrorCode { get; set; }
            [KafkaField("0+")] public long HighWatermark { get; set; }
            [KafkaField("4+")] public long LastStableOffset { get; set; } = -1;
            [KafkaField("5+")] public long LogStartOffset { get; set; } = -1;
            [KafkaField("12+", Tag = 0, Tagged = "12+")] public EpochEndOffset? DivergingEpoch { get; set; } = null;
            [KafkaField("12+", Tag = 1, Tagged = "12+")] public LeaderIdAndEpoch? CurrentLeader { get; set; } = null;
            [KafkaField("12+", Tag = 2, Tagged = "12+")] public SnapshotIdData? SnapshotId { get; set; } = null;
            [KafkaField("4+", Nullable = "4+")] public List<AbortedTransaction>? AbortedTransactions { get; set; } = [];
            [KafkaField("11+")] public int PreferredReadReplica { get; set; } = -1;
            [KafkaField("0+", Nullable = "0+")] public RecordsPayload? Records { get; set; } = null;

            public sealed class EpochEndOffset
            {
                [KafkaField("12+")] public int Epoch { get; set; } = -1;
                [KafkaField("12+")] public long EndOffset { get; set; } = -1;
            }

            public sealed class LeaderIdAndEpoch
            {
                [KafkaField("12+")] public int LeaderId { get; set; } = -1;
                [KafkaField("12+")] public int LeaderEpoch { get; set; } = -1;
            }

            public sealed class SnapshotIdData
            {
                [KafkaField("0+")] public long EndOffset { get; set; } = -1;
                [KafkaField("0+")] public int Epoch { get; set; } = -1;
            }

            public sealed class AbortedTransaction
            {
                [KafkaField("4+")] public long ProducerId { get; set; }
                [KafkaField("4+")] public long FirstOffset { get; set; }
            }
        }
    }

    public sealed class NodeEndpoint
    {
        [KafkaField("16+")] public int NodeId { get; set; }
        [KafkaField("16+")] public string Host { get; set; } = "";
        [KafkaField("16+")] public int Port { get; set; }
        [KafkaField("16+", Nullable = "16+")] public string? Rack { get; set; } = null;
    }
}
