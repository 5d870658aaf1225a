using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>DeleteRecords: moves each partition's log start offset forward (-1 means up to the high-water mark).</summary>
internal sealed class DeleteRecordsHandler(ITopicCatalog topics) : ApiHandler<DeleteRecordsRequest, DeleteRecordsResponse>
{
    public override VersionRange Versions => new(0, 2);

    protected override ValueTask<DeleteRecordsResponse?> HandleAsync(RequestContext context, DeleteRecordsRequest request, CancellationToken cancellationToken)
    {
        var response = new DeleteRecordsResponse();
        foreach (var t in request.Topics)
        {
            var topicResult = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name };
            response.Topics.Add(topicResult);
            topics.TryGetTopic(t.Name, out var topic);
            foreach (var p in t.Partitions)
            {
                var result = new DeleteRecordsResponse.DeleteRecordsTopicResult.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                topicResult.Partitions.Add(result);
                if (topic is null || !topic.TryGetPartition(p.PartitionIndex, out var log))
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                var deleted = log.DeleteRecords(p.Offset == -1 ? log.HighWatermark : p.Offset);
                result.ErrorCode = (short)deleted.Error;
                result.LowWatermark = deleted.LowWatermark;
            }
        }
        return ValueTask.FromResult<DeleteRecordsResponse?>(response);
    }
}
