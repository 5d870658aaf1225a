using Cairn.Broker.Services;
using System.Runtime.InteropServices;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>
/// Produce: each partition's batches are appended as they arrived (only the base offset is written
/// into them). With acks=-1 and log.flush.on.ack, the append returns only after the fsync that covers it.
/// </summary>
internal sealed class ProduceHandler(ITopicCatalog topics) : ApiHandler<ProduceRequest, ProduceResponse>
{
    public override VersionRange Versions => new(0, 11);

    protected override async ValueTask<ProduceResponse?> HandleAsync(RequestContext context, ProduceRequest request, CancellationToken cancellationToken)
    {
        var response = new ProduceResponse();
        bool validAcks = request.Acks is 0 or 1 or -1;
        bool transactional = request.TransactionalId is not null;
        foreach (var topicData in request.TopicData)
        {
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topicData.Name };
            response.Responses.Add(topicResponse);
            var (topic, topicError) = validAcks ? topics.GetOrAutoCreateTopic(topicData.Name, allowAutoCreate: true) : (null, ErrorCode.InvalidRequiredAcks);
            foreach (var partitionData in topicData.PartitionData)
            {
                var result = new ProduceResponse.TopicProduceResponse.PartitionProduceResponse { Index = partitionData.Index, BaseOffset = -1 };
                topicResponse.PartitionResponses.Add(result);
                if (topic is null) { result.ErrorCode = (short)topicError; continue; }
                if (transactional)
                {
                    result.ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed;
                    result.ErrorMessage = "transactions are not supported by this broker";
                    continue;
                }
                if (!topic.TryGetPartition(partitionData.Index, out var partition))
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                if (partitionData.Records is not MemoryRecords { Length: > 0 } records)
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRecord;
                    result.ErrorMessage = "no record batches in the request";
                    continue;
                }
                // The frame buffer belongs to this request: writing the assigned base offset into it is safe.
                var batches = MemoryMarshal.AsMemory(records.Bytes);
                var appended = await partition.AppendAsync(batches, acksAll: request.Acks == -1, cancellationToken);
                result.ErrorCode = (short)appended.Error;
                result.ErrorMessage = appended.ErrorMessage;
                result.BaseOffset = appended.BaseOffset;
                result.LogAppendTimeMs = appended.LogAppendTime;
                result.LogStartOffset = appended.LogStartOffset;
            }
        }
        return request.Acks == 0 ? null : response;
    }

    /// <summary>acks=0 takes no response, even to report a failure: the connection is closed instead, as in Kafka.</summary>
    protected override ProduceResponse? ErrorResponse(RequestContext context, ProduceRequest request, ErrorCode error) =>
        request.Acks == 0 ? null : base.ErrorResponse(context, request, error);
}
