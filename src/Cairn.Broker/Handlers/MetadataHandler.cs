using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;
using Cairn.Storage;

namespace Cairn.Broker.Handlers;

/// <summary>Metadata: this broker is the only node, leader of every partition and the controller.</summary>
internal sealed class MetadataHandler(ClusterIdentity cluster, ITopicCatalog topics) : ApiHandler<MetadataRequest, MetadataResponse>
{
    private const int AllTopicOperations = 0b1111_1111_1000; // read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs

    public override VersionRange Versions => new(0, 12);

    protected override ValueTask<MetadataResponse?> HandleAsync(RequestContext context, MetadataRequest request, CancellationToken cancellationToken)
    {
        short version = context.Version;
        var response = new MetadataResponse
        {
            Brokers = [new() { NodeId = cluster.NodeId, Host = cluster.AdvertisedHost, Port = cluster.AdvertisedPort }],
            ClusterId = cluster.ClusterId,
            ControllerId = cluster.NodeId,
        };
        // Before v4 the request has no auto-create flag: the broker setting decides (old clients rely on it).
        bool autoCreate = version < 4 || request.AllowAutoTopicCreation;
        // v0: an empty list means every topic; v1+: null means every topic, empty means none.
        bool allTopics = request.Topics is null || (version == 0 && request.Topics.Count == 0);
        if (allTopics)
        {
            foreach (var topic in topics.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
                response.Topics.Add(Describe(topic, request.IncludeTopicAuthorizedOperations));
            return ValueTask.FromResult<MetadataResponse?>(response);
        }
        foreach (var wanted in request.Topics!)
        {
            if (wanted.Name is null or "" && wanted.TopicId != Guid.Empty)
            {
                response.Topics.Add(topics.TryGetTopic(wanted.TopicId, out var byId)
                    ? Describe(byId, request.IncludeTopicAuthorizedOperations)
                    : new() { Name = null, TopicId = wanted.TopicId, ErrorCode = (short)ErrorCode.UnknownTopicId });
                continue;
            }
            var (topic, error) = topics.GetOrAutoCreateTopic(wanted.Name ?? "", autoCreate);
            response.Topics.Add(topic is not null
                ? Describe(topic, request.IncludeTopicAuthorizedOperations)
                : new() { Name = wanted.Name ?? "", ErrorCode = (short)error });
        }
        return ValueTask.FromResult<MetadataResponse?>(response);
    }

    private MetadataResponse.MetadataResponseTopic Describe(ITopic topic, bool includeOperations)
    {
        var result = new MetadataResponse.MetadataResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.Id,
            TopicAuthorizedOperations = includeOperations ? AllTopicOperations : int.MinValue,
        };
        for (int p = 0; p < topic.PartitionCount; p++)
        {
            if (topic.TryGetPartition(p, out var log) && log.OfflineReason is not null)
            {
                // Kafka (KRaft) for a partition whose only replica's log directory is offline: the controller leaves no
                // leader (the last ISR member stays in the ISR), and Metadata answers LEADER_NOT_AVAILABLE with leader -1
                // and the replica listed offline. Clients then leave this partition alone and keep using the others.
                result.Partitions.Add(new()
                {
                    ErrorCode = (short)ErrorCode.LeaderNotAvailable,
                    PartitionIndex = p,
                    LeaderId = -1,
                    LeaderEpoch = 0,
                    ReplicaNodes = [cluster.NodeId],
                    IsrNodes = [cluster.NodeId],
                    OfflineReplicas = [cluster.NodeId],
                });
                continue;
            }
            result.Partitions.Add(new()
            {
                PartitionIndex = p,
                LeaderId = cluster.NodeId,
                LeaderEpoch = 0,
                ReplicaNodes = [cluster.NodeId],
                IsrNodes = [cluster.NodeId],
            });
        }
        return result;
    }
}
