using Cairn.Broker.Groups;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>
/// OffsetFetch: named partitions or all of a group's (null topics), one group (v0-7) or several (v8+).
/// Nothing committed, or an unknown group, answers offset -1 with no error, as Kafka does.
/// </summary>
internal sealed class OffsetFetchHandler(ICommittedOffsets offsets) : ApiHandler<OffsetFetchRequest, OffsetFetchResponse>
{
    public override VersionRange Versions => new(0, 9);

    protected override ValueTask<OffsetFetchResponse?> HandleAsync(RequestContext context, OffsetFetchRequest request, CancellationToken cancellationToken)
    {
        var response = new OffsetFetchResponse();
        if (context.Version >= 8)
        {
            foreach (var g in request.Groups)
            {
                var wanted = g.Topics?.Select(t => (t.Name, t.PartitionIndexes)).ToList();
                var group = new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId };
                foreach (var (topic, partitions) in Lookup(g.GroupId, wanted))
                {
                    group.Topics.Add(new()
                    {
                        Name = topic,
                        Partitions = partitions.Select(p => new OffsetFetchResponse.OffsetFetchResponseGroup.OffsetFetchResponseTopics.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = p.Partition, CommittedOffset = p.Offset, CommittedLeaderEpoch = p.LeaderEpoch, Metadata = p.Metadata, ErrorCode = (short)p.Error,
                        }).ToList(),
                    });
                }
                response.Groups.Add(group);
            }
            return ValueTask.FromResult<OffsetFetchResponse?>(response);
        }
        // v0-1 cannot ask for "all partitions"; from v2 a null topic list means all.
        var requested = request.Topics?.Select(t => (t.Name, t.PartitionIndexes)).ToList();
        foreach (var (topic, partitions) in Lookup(request.GroupId, requested))
        {
            response.Topics.Add(new()
            {
                Name = topic,
                Partitions = partitions.Select(p => new OffsetFetchResponse.OffsetFetchResponseTopic.OffsetFetchResponsePartition
                {
                    PartitionIndex = p.Partition, CommittedOffset = p.Offset, CommittedLeaderEpoch = p.LeaderEpoch, Metadata = p.Metadata, ErrorCode = (short)p.Error,
                }).ToList(),
            });
        }
        return ValueTask.FromResult<OffsetFetchResponse?>(response);
    }

    private readonly record struct Fetched(int Partition, long Offset, int LeaderEpoch, string? Metadata, ErrorCode Error);

    private IEnumerable<(string Topic, List<Fetched> Partitions)> Lookup(string groupId, List<(string Name, List<int> Partitions)>? wanted)
    {
        if (wanted is null)
        {
            return offsets.FetchOffsets(groupId, null)
                .GroupBy(c => c.Topic)
                .Select(g => (g.Key, g.Select(c => new Fetched(c.Partition, c.Offset, c.LeaderEpoch, c.Metadata ?? "", ErrorCode.None)).ToList()));
        }
        // Distinct: a partition asked for twice is looked up once (and answered twice, as asked).
        var keys = wanted.SelectMany(t => t.Partitions.Select(p => (t.Name, p))).Distinct().ToList();
        var found = offsets.FetchOffsets(groupId, keys).ToDictionary(c => (c.Topic, c.Partition));
        return wanted.Select(t => (t.Name, t.Partitions.Select(p => found.TryGetValue((t.Name, p), out var c)
            ? new Fetched(p, c.Offset, c.LeaderEpoch, c.Metadata ?? "", ErrorCode.None)
            : new Fetched(p, -1, -1, "", ErrorCode.None)).ToList()));
    }
}
