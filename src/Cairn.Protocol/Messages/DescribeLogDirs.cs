using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

[KafkaMessage(ApiKey.DescribeLogDirs, MessageKind.Request, "0-4", Flexible = "2+")]
public sealed class DescribeLogDirsRequest
{
    [KafkaField("0+", Nullable = "0+")] public List<DescribableLogDirTopic>? Topics { get; set; } = [];

    public sealed class DescribableLogDirTopic
    {
        [KafkaField("0+")] public string Topic { get; set; } = "";
        [KafkaField("0+")] public List<int> Partitions { get; set; } = [];
    }
}

[KafkaMessage(ApiKey.DescribeLogDirs, MessageKind.Response, "0-4", Flexible = "2+")]
public sealed class DescribeLogDirsResponse
{
    [KafkaField("0+")] public int ThrottleTimeMs { get; set; }
    [KafkaField("3+")] public short ErrorCode { get; set; }
    [KafkaField("0+")] public List<DescribeLogDirsResult> Results { get; set; } = [];

    public sealed class DescribeLogDirsResult
    {
        [KafkaField("0+")] public short ErrorCode { get; set; }
        [KafkaField("0+")] public string LogDir { get; set; } = "";
        [KafkaField("0+")] public List<DescribeLogDirsTopic> Topics { get; set; } = [];
        [KafkaField("4+")] public long TotalBytes { get; set; } = -1;
        [KafkaField("4+")] public long UsableBytes { get; set; } = -1;

        public sealed class DescribeLogDirsTopic
        {
            [KafkaField("0+")] public string Name { get; set; } = "";
            [KafkaField("0+")] public List<DescribeLogDirsPartition> Partitions { get; set; } = [];

            public sealed class DescribeLogDirsPartition
            {
                [KafkaField("0+")] public int PartitionIndex { get; set; }
                [KafkaField("0+")] public long PartitionSize { get; set; }
                [KafkaField("0+")] public long OffsetLag { get; set; }
                [KafkaField("0+")] public bool IsFutureKey { get; set; }
            }
        }
    }
}
