using System.Buffers.Binary;
using System.Diagnostics;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Bench.RealClient;

/// <summary>Request dispatch and the non-group APIs of the null broker.</summary>
internal sealed partial class NullBroker
{
    public const int NodeId = 0;
    private const string ClusterId = "cairn-null-broker";

    /// <summary>
    /// Exactly what is implemented, up to the versions librdkafka 2.0.2 (Confluent.Kafka 1.9.3) sends, so every advertised
    /// version is one the real client exercises (seen with debug=protocol in null-broker-selfcheck). Produce starts at v3
    /// and Fetch at v4: only v2 record batches are accepted and replayed.
    /// </summary>
    private static readonly Dictionary<ApiKey, VersionRange> Supported = new()
    {
        [ApiKey.Produce] = new(3, 7),
        [ApiKey.Fetch] = new(4, 11),
        [ApiKey.ListOffsets] = new(1, 2),
        [ApiKey.Metadata] = new(0, 4),
        [ApiKey.OffsetCommit] = new(0, 7),
        [ApiKey.OffsetFetch] = new(0, 7),
        [ApiKey.FindCoordinator] = new(0, 2),
        [ApiKey.JoinGroup] = new(0, 5),
        [ApiKey.Heartbeat] = new(0, 3),
        [ApiKey.LeaveGroup] = new(0, 1),
        [ApiKey.SyncGroup] = new(0, 3),
        [ApiKey.ApiVersions] = new(0, 3),
        [ApiKey.CreateTopics] = new(0, 4),
        [ApiKey.InitProducerId] = new(0, 4),
    };

    private static readonly ApiVersionsResponse.ApiVersion[] Advertised = Supported
        .OrderBy(kv => kv.Key)
        .Select(kv => new ApiVersionsResponse.ApiVersion { ApiKey = (short)kv.Key, MinVersion = kv.Value.Min, MaxVersion = kv.Value.Max })
        .ToArray();

    private long _nextProducerId = 1000;

    /// <summary>Handles one request frame (after the size prefix); throws (closing the connection) on anything malformed or unsupported.</summary>
    private async ValueTask HandleAsync(Connection connection, ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        var reader = new KafkaReader(frame);
        var header = RequestHeader.Read(reader);
        short v = header.ApiVersion;
        if (!Supported.TryGetValue(header.ApiKey, out var range))
            throw new MalformedMessageException($"{header.ApiKey} ({(short)header.ApiKey}) is not supported by the null broker");
        if (!range.Contains(v))
        {
            if (header.ApiKey != ApiKey.ApiVersions)
                throw new UnsupportedVersionException(header.ApiKey, v);
            // A newer ApiVersions than we know: a v0 body with UNSUPPORTED_VERSION and our ranges (header v0 as always).
            WriteResponse(connection, header, new ApiVersionsResponse { ErrorCode = (short)ErrorCode.UnsupportedVersion, ApiKeys = [.. Advertised] }, 0);
            return;
        }
        switch (header.ApiKey)
        {
            case ApiKey.ApiVersions:
                MessageSerializer.Read<ApiVersionsRequest>(reader, v);
                WriteResponse(connection, header, new ApiVersionsResponse { ApiKeys = [.. Advertised] }, v);
                break;
            case ApiKey.Produce:
                if (HandleProduce(MessageSerializer.Read<ProduceRequest>(reader, v)) is { } produced)
                    WriteResponse(connection, header, produced, v);
                break;
            case ApiKey.Fetch:
                var fetch = MessageSerializer.Read<FetchRequest>(reader, v);
                WriteResponse(connection, header, await FetchAsync(connection, fetch, ct), v);
                break;
            case ApiKey.Metadata:
                WriteResponse(connection, header, HandleMetadata(MessageSerializer.Read<MetadataRequest>(reader, v), v), v);
                break;
            case ApiKey.ListOffsets:
                WriteResponse(connection, header, HandleListOffsets(MessageSerializer.Read<ListOffsetsRequest>(reader, v)), v);
                break;
            case ApiKey.CreateTopics:
                WriteResponse(connection, header, HandleCreateTopics(MessageSerializer.Read<CreateTopicsRequest>(reader, v)), v);
                break;
            case ApiKey.InitProducerId:
                WriteResponse(connection, header, HandleInitProducerId(MessageSerializer.Read<InitProducerIdRequest>(reader, v)), v);
                break;
            case ApiKey.FindCoordinator:
                WriteResponse(connection, header, HandleFindCoordinator(MessageSerializer.Read<FindCoordinatorRequest>(reader, v)), v);
                break;
            case ApiKey.JoinGroup:
                var join = _groups.JoinAsync(MessageSerializer.Read<JoinGroupRequest>(reader, v), v, header.ClientId);
                if (!join.IsCompleted) await connection.FlushAsync(ct);
                WriteResponse(connection, header, await join, v);
                break;
            case ApiKey.SyncGroup:
                var sync = _groups.SyncAsync(MessageSerializer.Read<SyncGroupRequest>(reader, v));
                if (!sync.IsCompleted) await connection.FlushAsync(ct);
                WriteResponse(connection, header, await sync, v);
                break;
            case ApiKey.Heartbeat:
                WriteResponse(connection, header, _groups.Heartbeat(MessageSerializer.Read<HeartbeatRequest>(reader, v)), v);
                break;
            case ApiKey.LeaveGroup:
                WriteResponse(connection, header, _groups.Leave(MessageSerializer.Read<LeaveGroupRequest>(reader, v), v), v);
                break;
            case ApiKey.OffsetCommit:
                WriteResponse(connection, header, _groups.Commit(MessageSerializer.Read<OffsetCommitRequest>(reader, v), PartitionExists), v);
                break;
            case ApiKey.OffsetFetch:
                WriteResponse(connection, header, _groups.FetchOffsets(MessageSerializer.Read<OffsetFetchRequest>(reader, v), v, PartitionExists), v);
                break;
            default:
                throw new UnreachableException($"{header.ApiKey} is advertised but not dispatched");
        }
    }

    private bool PartitionExists(string topic, int partition) =>
        _topics.TryGetValue(topic, out var t) && (uint)partition < (uint)t.Partitions.Length;

    private Partition? FindPartition(string topic, int partition) =>
        _topics.TryGetValue(topic, out var t) && (uint)partition < (uint)t.Partitions.Length ? t.Partitions[partition] : null;

    private MetadataResponse HandleMetadata(MetadataRequest request, short version)
    {
        var response = new MetadataResponse
        {
            Brokers = [new MetadataResponse.MetadataResponseBroker { NodeId = NodeId, Host = "127.0.0.1", Port = _port }],
            ClusterId = ClusterId,
            ControllerId = NodeId,
        };
        // v0: an empty list means all topics; v1+: null means all, empty means none.
        bool all = request.Topics is null || (version == 0 && request.Topics.Count == 0);
        IEnumerable<string> names = all ? _topics.Keys.Order(StringComparer.Ordinal) : request.Topics!.Select(t => t.Name ?? "");
        foreach (var name in names)
        {
            var entry = new MetadataResponse.MetadataResponseTopic { Name = name };
            response.Topics.Add(entry);
            if (!_topics.TryGetValue(name, out var topic) && _options.AutoCreateTopics && (version < 4 || request.AllowAutoTopicCreation) && IsValidTopicName(name))
                topic = _topics.GetOrAdd(name, n => new Topic(n, _options.DefaultPartitions));
            if (topic is null)
            {
                entry.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                continue;
            }
            for (int p = 0; p < topic.Partitions.Length; p++)
            {
                entry.Partitions.Add(new MetadataResponse.MetadataResponseTopic.MetadataResponsePartition
                {
                    PartitionIndex = p, LeaderId = NodeId, LeaderEpoch = 0, ReplicaNodes = [NodeId], IsrNodes = [NodeId],
                });
            }
        }
        return response;
    }

    private CreateTopicsResponse HandleCreateTopics(CreateTopicsRequest request)
    {
        var response = new CreateTopicsResponse();
        var duplicates = request.Topics.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        foreach (var t in request.Topics)
        {
            var result = new CreateTopicsResponse.CreatableTopicResult { Name = t.Name, ErrorMessage = null };
            response.Topics.Add(result);
            int partitions = t.Assignments.Count > 0 ? t.Assignments.Count : t.NumPartitions == -1 ? _options.DefaultPartitions : t.NumPartitions;
            (ErrorCode error, string? message) = true switch
            {
                _ when duplicates.Contains(t.Name) => (ErrorCode.InvalidRequest, $"topic {t.Name} appears more than once in the request"),
                _ when !IsValidTopicName(t.Name) => (ErrorCode.InvalidTopic, $"invalid topic name '{t.Name}'"),
                _ when _topics.ContainsKey(t.Name) => (ErrorCode.TopicAlreadyExists, $"Topic '{t.Name}' already exists."),
                _ when partitions < 1 => (ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0."),
                _ when t.ReplicationFactor is 0 or < -1 => (ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0."),
                _ when t.ReplicationFactor > 1 => (ErrorCode.InvalidReplicationFactor, $"Replication factor: {t.ReplicationFactor} larger than available brokers: 1."),
                _ => (ErrorCode.None, null),
            };
            result.ErrorCode = (short)error;
            result.ErrorMessage = message;
            if (error == ErrorCode.None && !request.ValidateOnly && !_topics.TryAdd(t.Name, new Topic(t.Name, partitions)))
            {
                result.ErrorCode = (short)ErrorCode.TopicAlreadyExists;
                result.ErrorMessage = $"Topic '{t.Name}' already exists.";
            }
        }
        return response;
    }

    /// <summary>Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".</summary>
    private static bool IsValidTopicName(string name) =>
        name.Length is > 0 and <= 249 && name is not ("." or "..") && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>Idempotent producers only (as Cairn): a fresh id with epoch 0, or (v3+, KIP-360) the next epoch of the presented id.</summary>
    private InitProducerIdResponse HandleInitProducerId(InitProducerIdRequest request)
    {
        var response = new InitProducerIdResponse();
        if (request.TransactionalId is not null)
        {
            response.ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed;
            return response;
        }
        if (request.ProducerId >= 0 && request.ProducerEpoch >= 0 && request.ProducerEpoch < short.MaxValue - 1)
        {
            response.ProducerId = request.ProducerId;
            response.ProducerEpoch = (short)(request.ProducerEpoch + 1);
        }
        else
        {
            response.ProducerId = Interlocked.Increment(ref _nextProducerId);
        }
        return response;
    }

    /// <summary>This broker coordinates every group; transactions are not offered (COORDINATOR_NOT_AVAILABLE).</summary>
    private FindCoordinatorResponse HandleFindCoordinator(FindCoordinatorRequest request)
    {
        bool group = request.KeyType == 0;
        return new FindCoordinatorResponse
        {
            ErrorCode = (short)(group ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable),
            ErrorMessage = group ? null : "the null broker has no transaction coordinator",
            NodeId = group ? NodeId : -1,
            Host = group ? "127.0.0.1" : "",
            Port = group ? _port : -1,
        };
    }

    /// <summary>
    /// Earliest is 0; latest is the partition's produce counter (also for partitions whose fetches replay a batch:
    /// a consumer starting at "latest" then reads the replayed batch from there). Nothing keeps timestamps, so a
    /// lookup by time answers offset -1, as Kafka does when no record is that recent.
    /// </summary>
    private ListOffsetsResponse HandleListOffsets(ListOffsetsRequest request)
    {
        var response = new ListOffsetsResponse();
        foreach (var t in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = t.Name };
            response.Topics.Add(topicResponse);
            foreach (var p in t.Partitions)
            {
                var result = new ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex };
                topicResponse.Partitions.Add(result);
                var partition = FindPartition(t.Name, p.PartitionIndex);
                if (partition is null)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                result.LeaderEpoch = 0;
                result.Offset = p.Timestamp switch
                {
                    -2 => 0,
                    -1 => Interlocked.Read(ref partition.NextOffset),
                    _ => -1,
                };
            }
        }
        return response;
    }
}
