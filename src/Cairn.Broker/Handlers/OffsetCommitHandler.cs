using Cairn.Broker.Groups;
using Cairn.Broker.Services;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>OffsetCommit: acknowledged only once the offsets are durable in the group store.</summary>
internal sealed class OffsetCommitHandler(ICommittedOffsets offsets) : ApiHandler<OffsetCommitRequest, OffsetCommitResponse>
{
    public override VersionRange Versions => new(0, 9);

    protected override async ValueTask<OffsetCommitResponse?> HandleAsync(RequestContext context, OffsetCommitRequest request, CancellationToken cancellationToken)
    {
        var entries = new List<OffsetCommitEntry>();
        foreach (var t in request.Topics)
            foreach (var p in t.Partitions)
                entries.Add(new OffsetCommitEntry(t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata));
        // v0 has neither generation nor member: a standalone commit.
        int generation = context.Version >= 1 ? request.GenerationIdOrMemberEpoch : -1;
        var results = await offsets.CommitOffsetsAsync(request.GroupId, generation, request.MemberId, request.GroupInstanceId, entries, cancellationToken);

        var response = new OffsetCommitResponse();
        int i = 0;
        foreach (var t in request.Topics)
        {
            var topic = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
            response.Topics.Add(topic);
            foreach (var p in t.Partitions)
                topic.Partitions.Add(new() { PartitionIndex = p.PartitionIndex, ErrorCode = (short)results[i++].Error });
        }
        return response;
    }
}
