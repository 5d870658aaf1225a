using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;

namespace Cairn.Broker.Handlers;

/// <summary>DeleteTopics by name (all versions) or by topic id (v6+).</summary>
internal sealed class DeleteTopicsHandler(ITopicCatalog topics, ICommittedOffsets offsets) : ApiHandler<DeleteTopicsRequest, DeleteTopicsResponse>
{
    public override VersionRange Versions => new(0, 6);

    protected override async ValueTask<DeleteTopicsResponse?> HandleAsync(RequestContext context, DeleteTopicsRequest request, CancellationToken cancellationToken)
    {
        var response = new DeleteTopicsResponse();
        var wanted = context.Version >= 6
            ? request.Topics.Select(t => (t.Name, t.TopicId))
            : request.TopicNames.Select(n => ((string?)n, Guid.Empty));
        foreach (var (name, id) in wanted)
        {
            var result = new DeleteTopicsResponse.DeletableTopicResult { Name = name, TopicId = id };
            response.Responses.Add(result);
            string? resolved = name;
            if (string.IsNullOrEmpty(name))
            {
                if (topics.TryGetTopic(id, out var byId)) resolved = byId.Name;
                else { result.ErrorCode = (short)ErrorCode.UnknownTopicId; continue; }
            }
            if (!topics.TryGetTopic(resolved!, out var topic))
            {
                result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                result.ErrorMessage = "This server does not host this topic-partition.";
                continue;
            }
            result.Name = topic.Name;
            result.TopicId = topic.Id;
            var deleted = topics.DeleteTopic(topic.Name);
            result.ErrorCode = (short)deleted.Error;
            result.ErrorMessage = deleted.ErrorMessage;
            // Committed offsets of a deleted topic go too, as in Kafka.
            if (deleted.Succeeded) await offsets.OnTopicDeletedAsync(topic.Name, cancellationToken);
        }
        return response;
    }
}
