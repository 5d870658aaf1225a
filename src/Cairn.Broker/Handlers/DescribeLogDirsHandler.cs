using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>DescribeLogDirs: the one data directory with each partition's size on disk (null topics: all).</summary>
internal sealed class DescribeLogDirsHandler(StaticBrokerConfig settings, ITopicCatalog topics) : ApiHandler<DescribeLogDirsRequest, DescribeLogDirsResponse>
{
    public override VersionRange Versions => new(0, 4);

    protected override ValueTask<DescribeLogDirsResponse?> HandleAsync(RequestContext context, DescribeLogDirsRequest request, CancellationToken cancellationToken)
    {
        var dir = new DescribeLogDirsResponse.DescribeLogDirsResult { LogDir = settings.DataDir };
        try
        {
            var drive = new DriveInfo(settings.DataDir);
            (dir.TotalBytes, dir.UsableBytes) = (drive.TotalSize, drive.AvailableFreeSpace);
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            // Sizes of the file system are optional; the partitions are what matter.
        }
        // A topic named twice asks for the union of its partitions (Kafka collects the request into one set).
        Dictionary<string, HashSet<int>>? wanted = null;
        if (request.Topics is not null)
        {
            wanted = new(StringComparer.Ordinal);
            foreach (var t in request.Topics)
            {
                if (!wanted.TryGetValue(t.Topic, out var set)) wanted[t.Topic] = set = [];
                set.UnionWith(t.Partitions);
            }
        }
        foreach (var topic in topics.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            HashSet<int>? partitions = null;
            if (wanted is not null && !wanted.TryGetValue(topic.Name, out partitions)) continue;
            var entry = new DescribeLogDirsResponse.DescribeLogDirsResult.DescribeLogDirsTopic { Name = topic.Name };
            foreach (var log in topic.Partitions)
            {
                if (partitions is not null && !partitions.Contains(log.Partition)) continue;
                // Kafka lists only the replicas whose log is online; an offline partition's size is not known.
                if (log.OfflineReason is not null) continue;
                entry.Partitions.Add(new() { PartitionIndex = log.Partition, PartitionSize = log.SizeInBytes, OffsetLag = 0 });
            }
            if (entry.Partitions.Count > 0) dir.Topics.Add(entry);
        }
        return ValueTask.FromResult<DescribeLogDirsResponse?>(new DescribeLogDirsResponse { Results = [dir] });
    }
}
