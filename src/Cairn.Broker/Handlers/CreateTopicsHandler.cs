using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Schema;
using Cairn.Storage;

namespace Cairn.Broker.Handlers;

/// <summary>CreateTopics with partition counts, replica assignments (single node: only this node) and topic configs.</summary>
internal sealed class CreateTopicsHandler(ClusterIdentity cluster, ITopicCatalog topics) : ApiHandler<CreateTopicsRequest, CreateTopicsResponse>
{
    public override VersionRange Versions => new(0, 7);

    protected override ValueTask<CreateTopicsResponse?> HandleAsync(RequestContext context, CreateTopicsRequest request, CancellationToken cancellationToken)
    {
        var response = new CreateTopicsResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in request.Topics)
        {
            var result = new CreateTopicsResponse.CreatableTopicResult { Name = t.Name, ErrorMessage = null };
            response.Topics.Add(result);
            if (!seen.Add(t.Name))
            {
                Fail(result, ErrorCode.InvalidRequest, $"Topic {t.Name} appears more than once in the request");
                continue;
            }
            var (error, message, partitions) = Validate(t);
            if (error != ErrorCode.None) { Fail(result, error, message); continue; }

            var configs = t.Configs.Select(c => new KeyValuePair<string, string?>(c.Name, c.Value)).ToList();
            TopicChange created;
            if (request.ValidateOnly)
            {
                created = topics.ValidateCreateTopic(t.Name, partitions, configs);
            }
            else
            {
                created = topics.CreateTopic(t.Name, partitions, configs);
            }
            if (!created.Succeeded) { Fail(result, created.Error, created.ErrorMessage); continue; }

            result.NumPartitions = partitions;
            result.ReplicationFactor = 1;
            if (created.Topic is { } topic)
            {
                result.TopicId = topic.Id;
                result.Configs = topic.DescribeConfigs()
                    .Select(e => new CreateTopicsResponse.CreatableTopicResult.CreatableTopicConfigs
                    {
                        Name = e.Name, Value = e.Value, ReadOnly = e.ReadOnly, ConfigSource = (sbyte)e.Source, IsSensitive = e.IsSensitive,
                    }).ToList();
            }
        }
        return ValueTask.FromResult<CreateTopicsResponse?>(response);
    }

    private (ErrorCode, string?, int) Validate(CreateTopicsRequest.CreatableTopic t)
    {
        if (!TopicNames.IsValid(t.Name)) return (ErrorCode.InvalidTopic, TopicNames.Explain(t.Name), 0);
        if (t.Assignments.Count > 0)
        {
            if (t.NumPartitions != -1 || t.ReplicationFactor != -1)
                return (ErrorCode.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.", 0);
            var indexes = t.Assignments.Select(a => a.PartitionIndex).Order().ToList();
            if (!indexes.SequenceEqual(Enumerable.Range(0, indexes.Count)))
                return (ErrorCode.InvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence", 0);
            foreach (var a in t.Assignments)
                if (a.BrokerIds.Count != 1 || a.BrokerIds[0] != cluster.NodeId)
                    return (ErrorCode.InvalidReplicaAssignment, $"Replica assignment {string.Join(",", a.BrokerIds)} names brokers other than the only broker {cluster.NodeId}", 0);
            return (ErrorCode.None, null, t.Assignments.Count);
        }
        int partitions = t.NumPartitions == -1 ? topics.DefaultPartitions : t.NumPartitions;
        if (partitions <= 0) return (ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.", 0);
        if (t.ReplicationFactor is not (-1 or 1) )
        {
            return t.ReplicationFactor <= 0
                ? (ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0.", 0)
                : (ErrorCode.InvalidReplicationFactor, $"Unable to replicate the partition {t.ReplicationFactor} time(s): The target replication factor of {t.ReplicationFactor} cannot be reached because only 1 broker(s) are registered.", 0);
        }
        return (ErrorCode.None, null, partitions);
    }

    private static void Fail(CreateTopicsResponse.CreatableTopicResult result, ErrorCode error, string? message)
    {
        result.ErrorCode = (short)error;
        result.ErrorMessage = message;
        result.Configs = null;
    }
}
