using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>ListOffsets: earliest, latest, max timestamp, or the first offset at or after a timestamp (via the time index).</summary>
internal sealed class ListOffsetsHandler(ITopicCatalog topics) : ApiHandler<ListOffsetsRequest, ListOffsetsResponse>
{
    private const long Latest = -1, Earliest = -2, MaxTimestamp = -3, EarliestLocal = -4, LatestTiered = -5;

    public override VersionRange Versions => new(1, 10);

    protected override ValueTask<ListOffsetsResponse?> HandleAsync(RequestContext context, ListOffsetsRequest request, CancellationToken cancellationToken)
    {
        var response = new ListOffsetsResponse();
        foreach (var t in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = t.Name };
            response.Topics.Add(topicResponse);
            topics.TryGetTopic(t.Name, out var topic);
            foreach (var p in t.Partitions)
            {
                var result = new ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse
                {
                    PartitionIndex = p.PartitionIndex, Timestamp = -1, Offset = -1, LeaderEpoch = 0,
                };
                topicResponse.Partitions.Add(result);
                if (topic is null || !topic.TryGetPartition(p.PartitionIndex, out var log))
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                if (log.OfflineReason is not null)
                {
                    // Its offsets are unknown until an operator repairs its files; answering 0 would send consumers back to the start.
                    result.ErrorCode = (short)ErrorCode.KafkaStorageError;
                    continue;
                }
                switch (p.Timestamp)
                {
                    case Latest:
                        result.Offset = log.HighWatermark;
                        break;
                    case Earliest or EarliestLocal:
                        result.Offset = log.LogStartOffset;
                        break;
                    case LatestTiered:
                        break; // no tiered storage: nothing is tiered
                    case MaxTimestamp:
                        var max = log.GetMaxTimestamp();
                        (result.Offset, result.Timestamp) = (max.Offset, max.Timestamp);
                        break;
                    case < 0:
                        result.ErrorCode = (short)ErrorCode.InvalidRequest;
                        break;
                    default:
                        var found = log.FindOffsetByTimestamp(p.Timestamp);
                        (result.Offset, result.Timestamp) = (found.Offset, found.Timestamp);
                        break;
                }
            }
        }
        return ValueTask.FromResult<ListOffsetsResponse?>(response);
    }
}
