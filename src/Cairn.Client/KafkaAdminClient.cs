using Cairn.Client.Internal;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Cairn.Client;

/// <summary>
/// Administers topics, configs, consumer groups and offsets. Operations on several items throw a
/// <see cref="KafkaOperationException"/> naming each item that failed (the others succeeded); retriable errors
/// (a moved controller, leader or coordinator, a lost connection) are retried first. Safe for concurrent use.
/// </summary>
public sealed class KafkaAdminClient : IAsyncDisposable
{
    private readonly KafkaCluster _cluster;
    private readonly ILogger _logger;

    public KafkaAdminClient(KafkaClientOptions options)
    {
        _cluster = new KafkaCluster(options, "Admin");
        _logger = _cluster.Logger;
    }

    private int TimeoutMs => (int)Math.Min(int.MaxValue, _cluster.Options.RequestTimeout.TotalMilliseconds);

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    // ------------------------------------------------------------------ helpers

    private readonly record struct ItemOutcome<T>(ErrorCode Error, string? Message, T Value);

    /// <summary>
    /// Runs a request over named items, again for the items that failed retriably (and for the whole request after a
    /// retriable failure), and throws a <see cref="KafkaOperationException"/> for items that failed for good.
    /// </summary>
    private async Task<Dictionary<string, T>> RunPerItemAsync<T>(string operation, IReadOnlyCollection<string> names,
        Func<IReadOnlyCollection<string>, Task<Dictionary<string, ItemOutcome<T>>>> attempt, CancellationToken cancellationToken,
        Action<ErrorCode>? onRetriable = null)
    {
        var results = new Dictionary<string, T>(StringComparer.Ordinal);
        var failures = new Dictionary<string, KafkaException>(StringComparer.Ordinal);
        var remaining = names.Distinct(StringComparer.Ordinal).ToList();
        for (int i = 0; remaining.Count > 0; i++)
        {
            bool last = i >= _cluster.Options.Retries;
            Dictionary<string, ItemOutcome<T>> outcomes;
            try
            {
                outcomes = await attempt(remaining).ConfigureAwait(false);
            }
            catch (KafkaException e) when (e.IsRetriable && !last)
            {
                onRetriable?.Invoke(e.Error);
                await Task.Delay(_cluster.Backoff(i), cancellationToken).ConfigureAwait(false);
                continue;
            }
            var retry = new List<string>();
            foreach (var name in remaining)
            {
                if (!outcomes.TryGetValue(name, out var outcome))
                {
                    failures[name] = new KafkaException(ErrorCode.UnknownServerError, $"{operation} for '{name}': the broker's response does not mention it");
                    continue;
                }
                if (outcome.Error == ErrorCode.None) { results[name] = outcome.Value; continue; }
                if (KafkaErrors.IsRetriable(outcome.Error) && !last)
                {
                    onRetriable?.Invoke(outcome.Error);
                    retry.Add(name);
                    continue;
                }
                failures[name] = KafkaException.FromCode(outcome.Error, $"{operation} for '{name}'", outcome.Message);
            }
            remaining = retry;
            if (remaining.Count > 0) await Task.Delay(_cluster.Backoff(i), cancellationToken).ConfigureAwait(false);
        }
        if (failures.Count > 0) throw new KafkaOperationException(operation, failures);
        return results;
    }

    private void OnControllerError(ErrorCode error)
    {
        // A new controller, or topics whose metadata changed: look again.
        if (error is ErrorCode.NotController or ErrorCode.NetworkException or ErrorCode.RequestTimedOut)
            _ = _cluster.RefreshMetadataAsync([], false, _cluster.Lifetime).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
    }

    // ------------------------------------------------------------------ cluster and topics

    /// <summary>Brokers, controller and cluster id.</summary>
    public async Task<ClusterDescription> DescribeClusterAsync(CancellationToken cancellationToken = default)
    {
        var response = await _cluster.RetryAsync(_ => _cluster.RefreshMetadataAsync([], false, cancellationToken), cancellationToken).ConfigureAwait(false);
        return new ClusterDescription(response.ClusterId, response.ControllerId,
            response.Brokers.OrderBy(b => b.NodeId).Select(b => new BrokerDescription(b.NodeId, b.Host, b.Port, b.Rack)).ToList());
    }

    /// <summary>
    /// The API versions a broker supports (its ApiVersions answer) and the version this client uses for each
    /// (-1: none in common). Like kafka-broker-api-versions.sh.
    /// </summary>
    public async Task<BrokerApiVersions> DescribeApiVersionsAsync(int nodeId, CancellationToken cancellationToken = default)
    {
        var connection = await _cluster.RetryAsync(_ => _cluster.GetConnectionAsync(nodeId, cancellationToken), cancellationToken).ConfigureAwait(false);
        return new BrokerApiVersions(nodeId, connection.BrokerVersions
            .OrderBy(v => v.Key)
            .Select(v => new ApiVersionSupport(v.Key, v.Value.Min, v.Value.Max, connection.GetVersion(v.Key)))
            .ToList());
    }

    /// <summary>Every topic (internal ones, such as __consumer_offsets, only when asked), by name.</summary>
    public async Task<IReadOnlyList<TopicListing>> ListTopicsAsync(bool includeInternal = false, CancellationToken cancellationToken = default)
    {
        var response = await _cluster.RetryAsync(_ => _cluster.RefreshMetadataAsync(null, false, cancellationToken), cancellationToken).ConfigureAwait(false);
        return response.Topics
            .Where(t => t.ErrorCode == 0 && t.Name is not null && (includeInternal || !t.IsInternal))
            .Select(t => new TopicListing(t.Name!, t.TopicId, t.IsInternal, t.Partitions.Count))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Creates one topic.</summary>
    public async Task<CreatedTopic> CreateTopicAsync(string name, int numPartitions = -1, short replicationFactor = -1,
        IReadOnlyDictionary<string, string?>? configs = null, CancellationToken cancellationToken = default)
    {
        var created = await CreateTopicsAsync([new NewTopic(name, numPartitions, replicationFactor) { Configs = configs }], false, cancellationToken).ConfigureAwait(false);
        return created[0];
    }

    /// <summary>Creates topics (on the controller). With <paramref name="validateOnly"/> the broker only checks the request.</summary>
    public async Task<IReadOnlyList<CreatedTopic>> CreateTopicsAsync(IEnumerable<NewTopic> topics, bool validateOnly = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(topics);
        var byName = new Dictionary<string, NewTopic>(StringComparer.Ordinal);
        foreach (var t in topics)
        {
            ArgumentException.ThrowIfNullOrEmpty(t.Name, nameof(topics));
            if (!byName.TryAdd(t.Name, t)) throw new ArgumentException($"topic '{t.Name}' is listed twice", nameof(topics));
        }
        if (byName.Count == 0) return [];
        var results = await RunPerItemAsync("CreateTopics", byName.Keys, async names =>
        {
            int controller = await _cluster.GetControllerAsync(cancellationToken).ConfigureAwait(false);
            var (response, version) = await _cluster.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(controller, v => new CreateTopicsRequest
            {
                TimeoutMs = TimeoutMs,
                ValidateOnly = validateOnly,
                Topics = names.Select(n => byName[n]).Select(t => new CreateTopicsRequest.CreatableTopic
                {
                    Name = t.Name,
                    NumPartitions = t.ReplicaAssignments is { Count: > 0 } ? -1 : t.NumPartitions,
                    ReplicationFactor = t.ReplicaAssignments is { Count: > 0 } ? (short)-1 : t.ReplicationFactor,
                    Assignments = t.ReplicaAssignments?.OrderBy(a => a.Key).Select(a => new CreateTopicsRequest.CreatableTopic.CreatableReplicaAssignment
                    {
                        PartitionIndex = a.Key, BrokerIds = [.. a.Value],
                    }).ToList() ?? [],
                    Configs = t.Configs?.Select(c => new CreateTopicsRequest.CreatableTopic.CreatableTopicConfig { Name = c.Key, Value = c.Value }).ToList() ?? [],
                }).ToList(),
            }, cancellationToken, extraTimeout: _cluster.Options.RequestTimeout).ConfigureAwait(false);
            return response.Topics.ToDictionary(t => t.Name, t => new ItemOutcome<CreatedTopic>((ErrorCode)t.ErrorCode, t.ErrorMessage,
                new CreatedTopic(t.Name, t.TopicId,
                    version >= 5 && t.NumPartitions > 0 ? t.NumPartitions : byName[t.Name].ReplicaAssignments?.Count ?? byName[t.Name].NumPartitions,
                    version >= 5 && t.ReplicationFactor > 0 ? t.ReplicationFactor : byName[t.Name].ReplicationFactor)));
        }, cancellationToken, OnControllerError).ConfigureAwait(false);
        foreach (var name in results.Keys) _cluster.InvalidateTopic(name);
        return byName.Keys.Select(n => results[n]).ToList();
    }

    /// <summary>Deletes topics (on the controller).</summary>
    public async Task DeleteTopicsAsync(IEnumerable<string> topics, CancellationToken cancellationToken = default)
    {
        var names = topics.ToList();
        foreach (var n in names) ArgumentException.ThrowIfNullOrEmpty(n, nameof(topics));
        if (names.Count == 0) return;
        await RunPerItemAsync("DeleteTopics", names, async remaining =>
        {
            int controller = await _cluster.GetControllerAsync(cancellationToken).ConfigureAwait(false);
            var (response, _) = await _cluster.SendAsync<DeleteTopicsRequest, DeleteTopicsResponse>(controller, v => new DeleteTopicsRequest
            {
                TimeoutMs = TimeoutMs,
                TopicNames = [.. remaining],
                Topics = remaining.Select(n => new DeleteTopicsRequest.DeleteTopicState { Name = n }).ToList(),
            }, cancellationToken, extraTimeout: _cluster.Options.RequestTimeout).ConfigureAwait(false);
            return response.Responses.Where(r => r.Name is not null)
                .ToDictionary(r => r.Name!, r => new ItemOutcome<bool>((ErrorCode)r.ErrorCode, r.ErrorMessage, true));
        }, cancellationToken, OnControllerError).ConfigureAwait(false);
        foreach (var n in names) _cluster.InvalidateTopic(n);
    }

    /// <summary>
    /// Topics with their partitions, leaders and replicas, and (with <paramref name="includeOffsets"/>) each partition's
    /// log start and end offsets (null when they could not be listed).
    /// </summary>
    public async Task<IReadOnlyList<TopicDescription>> DescribeTopicsAsync(IEnumerable<string> topics, bool includeOffsets = true, CancellationToken cancellationToken = default)
    {
        var names = topics.Distinct(StringComparer.Ordinal).ToList();
        foreach (var n in names) ArgumentException.ThrowIfNullOrEmpty(n, nameof(topics));
        if (names.Count == 0) return [];
        var described = await RunPerItemAsync("DescribeTopics", names, async remaining =>
        {
            var response = await _cluster.RefreshMetadataAsync(remaining, false, cancellationToken).ConfigureAwait(false);
            var outcomes = new Dictionary<string, ItemOutcome<TopicDescription?>>(StringComparer.Ordinal);
            foreach (var t in response.Topics)
            {
                if (t.Name is null) continue;
                var error = (ErrorCode)t.ErrorCode;
                // A topic still electing leaders is described as it is (leader -1), not retried forever.
                outcomes[t.Name] = new(error == ErrorCode.LeaderNotAvailable ? ErrorCode.None : error, null, error is ErrorCode.None or ErrorCode.LeaderNotAvailable
                    ? new TopicDescription(t.Name, t.TopicId, t.IsInternal, t.Partitions.OrderBy(p => p.PartitionIndex).Select(p =>
                        new PartitionDescription(p.PartitionIndex, p.LeaderId, p.LeaderEpoch, p.ReplicaNodes, p.IsrNodes, p.OfflineReplicas, null, null)).ToList())
                    : null);
            }
            return outcomes;
        }, cancellationToken).ConfigureAwait(false);

        if (includeOffsets)
        {
            // A leaderless partition (offline, or still electing) has no one to answer ListOffsets: its offsets stay null
            // at once instead of after every retry.
            var partitions = described.Values.SelectMany(t => t!.Partitions.Where(p => p.Leader >= 0).Select(p => new TopicPartition(t.Name, p.Partition))).ToList();
            var earliest = PartitionRequests.ListOffsetsAsync(_cluster, partitions.ToDictionary(p => p, _ => PartitionRequests.EarliestTimestamp), IsolationLevel.ReadUncommitted, cancellationToken);
            var latest = PartitionRequests.ListOffsetsAsync(_cluster, partitions.ToDictionary(p => p, _ => PartitionRequests.LatestTimestamp), IsolationLevel.ReadUncommitted, cancellationToken);
            var (low, _) = await earliest.ConfigureAwait(false);
            var (high, _) = await latest.ConfigureAwait(false);
            foreach (var name in described.Keys.ToList())
            {
                var t = described[name]!;
                described[name] = t with
                {
                    Partitions = t.Partitions.Select(p => p with
                    {
                        LogStartOffset = low.TryGetValue(new TopicPartition(name, p.Partition), out var l) ? l.Offset : null,
                        LogEndOffset = high.TryGetValue(new TopicPartition(name, p.Partition), out var h) ? h.Offset : null,
                    }).ToList(),
                };
            }
        }
        return names.Select(n => described[n]!).ToList();
    }

    /// <summary>
    /// Each partition's size on disk (DescribeLogDirs), as the broker leading it reports; partitions whose broker
    /// does not answer or lacks the API are left out, so callers can show them as unknown.
    /// </summary>
    public async Task<IReadOnlyDictionary<TopicPartition, long>> DescribePartitionSizesAsync(IReadOnlyCollection<TopicDescription> topics,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(topics);
        var sizes = new Dictionary<TopicPartition, long>();
        var byLeader = topics.SelectMany(t => t.Partitions.Select(p => (Leader: p.Leader, Tp: new TopicPartition(t.Name, p.Partition))))
            .Where(x => x.Leader >= 0)
            .GroupBy(x => x.Leader, x => x.Tp);
        var answers = await Task.WhenAll(byLeader.Select(async group =>
        {
            var request = new DescribeLogDirsRequest
            {
                Topics = group.GroupBy(tp => tp.Topic)
                    .Select(t => new DescribeLogDirsRequest.DescribableLogDirTopic { Topic = t.Key, Partitions = t.Select(tp => tp.Partition).ToList() }).ToList(),
            };
            try
            {
                var (response, _) = await _cluster.SendAsync<DescribeLogDirsRequest, DescribeLogDirsResponse>(group.Key, _ => request, cancellationToken).ConfigureAwait(false);
                return (Leader: group.Key, Wanted: group.ToHashSet(), Response: (DescribeLogDirsResponse?)response);
            }
            catch (KafkaException e) when (e.Error == ErrorCode.UnsupportedVersion)
            {
                return (Leader: group.Key, Wanted: group.ToHashSet(), Response: (DescribeLogDirsResponse?)null);
            }
        })).ConfigureAwait(false);
        foreach (var (_, wanted, response) in answers)
        {
            if (response is null || response.ErrorCode != 0) continue;
            foreach (var dir in response.Results.Where(d => d.ErrorCode == 0))
                foreach (var t in dir.Topics)
                    foreach (var p in t.Partitions)
                    {
                        var tp = new TopicPartition(t.Name, p.PartitionIndex);
                        if (!p.IsFutureKey && wanted.Contains(tp)) sizes[tp] = p.PartitionSize;
                    }
        }
        return sizes;
    }

    /// <summary>Raises topics' partition counts to the given totals (on the controller).</summary>
    public async Task CreatePartitionsAsync(IReadOnlyDictionary<string, int> newTotalCounts, bool validateOnly = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(newTotalCounts);
        if (newTotalCounts.Count == 0) return;
        await RunPerItemAsync("CreatePartitions", newTotalCounts.Keys.ToList(), async remaining =>
        {
            int controller = await _cluster.GetControllerAsync(cancellationToken).ConfigureAwait(false);
            var (response, _) = await _cluster.SendAsync<CreatePartitionsRequest, CreatePartitionsResponse>(controller, v => new CreatePartitionsRequest
            {
                TimeoutMs = TimeoutMs,
                ValidateOnly = validateOnly,
                Topics = remaining.Select(n => new CreatePartitionsRequest.CreatePartitionsTopic { Name = n, Count = newTotalCounts[n], Assignments = null }).ToList(),
            }, cancellationToken, extraTimeout: _cluster.Options.RequestTimeout).ConfigureAwait(false);
            return response.Results.ToDictionary(r => r.Name, r => new ItemOutcome<bool>((ErrorCode)r.ErrorCode, r.ErrorMessage, true));
        }, cancellationToken, OnControllerError).ConfigureAwait(false);
        foreach (var n in newTotalCounts.Keys) _cluster.InvalidateTopic(n);
    }

    /// <summary>Raises one topic's partition count to <paramref name="totalCount"/>.</summary>
    public Task CreatePartitionsAsync(string topic, int totalCount, CancellationToken cancellationToken = default) =>
        CreatePartitionsAsync(new Dictionary<string, int> { [topic] = totalCount }, false, cancellationToken);

    /// <summary>Deletes the records before the given offsets (-1: the high-water mark); returns each partition's new log start offset.</summary>
    public async Task<IReadOnlyDictionary<TopicPartition, long>> DeleteRecordsAsync(IReadOnlyDictionary<TopicPartition, long> beforeOffsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(beforeOffsets);
        var (results, failures) = await PartitionRequests.SendAsync<long>(_cluster, beforeOffsets.Keys, "DeleteRecords", async (leader, tps) =>
        {
            var (response, _) = await _cluster.SendAsync<DeleteRecordsRequest, DeleteRecordsResponse>(leader, v => new DeleteRecordsRequest
            {
                TimeoutMs = TimeoutMs,
                Topics = tps.GroupBy(tp => tp.Topic).Select(g => new DeleteRecordsRequest.DeleteRecordsTopic
                {
                    Name = g.Key,
                    Partitions = g.Select(tp => new DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition { PartitionIndex = tp.Partition, Offset = beforeOffsets[tp] }).ToList(),
                }).ToList(),
            }, cancellationToken).ConfigureAwait(false);
            var outcomes = new Dictionary<TopicPartition, PartitionRequests.PartitionOutcome<long>>();
            foreach (var t in response.Topics)
                foreach (var p in t.Partitions)
                    outcomes[new TopicPartition(t.Name, p.PartitionIndex)] = new((ErrorCode)p.ErrorCode, null, p.LowWatermark);
            return outcomes;
        }, cancellationToken).ConfigureAwait(false);
        PartitionRequests.ThrowIfAny("DeleteRecords", failures);
        return results;
    }

    // ------------------------------------------------------------------ offsets

    /// <summary>One ListOffsets lookup for each partition (earliest, latest, max timestamp, or by time).</summary>
    public Task<IReadOnlyDictionary<TopicPartition, ListOffsetsResultInfo>> ListOffsetsAsync(IEnumerable<TopicPartition> partitions, OffsetSpec spec,
        IsolationLevel isolationLevel = IsolationLevel.ReadUncommitted, CancellationToken cancellationToken = default) =>
        ListOffsetsAsync(partitions.Distinct().ToDictionary(p => p, _ => spec), isolationLevel, cancellationToken);

    /// <summary>ListOffsets with a lookup per partition. By time, -1 means no record at or after the time.</summary>
    public async Task<IReadOnlyDictionary<TopicPartition, ListOffsetsResultInfo>> ListOffsetsAsync(IReadOnlyDictionary<TopicPartition, OffsetSpec> partitions,
        IsolationLevel isolationLevel = IsolationLevel.ReadUncommitted, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var (results, failures) = await PartitionRequests.ListOffsetsAsync(_cluster, partitions.ToDictionary(p => p.Key, p => p.Value.Value), isolationLevel, cancellationToken).ConfigureAwait(false);
        PartitionRequests.ThrowIfAny("ListOffsets", failures);
        return results.ToDictionary(r => r.Key, r => new ListOffsetsResultInfo(r.Value.Offset,
            r.Value.Timestamp >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(r.Value.Timestamp) : null,
            r.Value.LeaderEpoch >= 0 ? r.Value.LeaderEpoch : null));
    }

    /// <summary>
    /// A group's committed offsets: of <paramref name="partitions"/>, or of every partition it has offsets for when null.
    /// Partitions without a committed offset are absent from the result.
    /// </summary>
    public async Task<IReadOnlyDictionary<TopicPartition, OffsetAndMetadata>> FetchCommittedOffsetsAsync(string groupId,
        IEnumerable<TopicPartition>? partitions = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        var wanted = partitions?.Distinct().ToList();
        var byTopic = wanted?.GroupBy(tp => tp.Topic).ToList();
        if (wanted is { Count: 0 }) return new Dictionary<TopicPartition, OffsetAndMetadata>();
        return await _cluster.RetryAsync(async _ =>
        {
            var (response, version) = await _cluster.SendToCoordinatorAsync<OffsetFetchRequest, OffsetFetchResponse>(groupId, v =>
            {
                if (v < 2 && wanted is null)
                    throw new KafkaException(ErrorCode.UnsupportedVersion, "the coordinator is too old to list all of a group's offsets (OffsetFetch v2+); name the partitions");
                return new OffsetFetchRequest
                {
                    GroupId = groupId,
                    Topics = byTopic?.Select(g => new OffsetFetchRequest.OffsetFetchRequestTopic { Name = g.Key, PartitionIndexes = g.Select(tp => tp.Partition).ToList() }).ToList(),
                    Groups =
                    [
                        new OffsetFetchRequest.OffsetFetchRequestGroup
                        {
                            GroupId = groupId,
                            Topics = byTopic?.Select(g => new OffsetFetchRequest.OffsetFetchRequestGroup.OffsetFetchRequestTopics { Name = g.Key, PartitionIndexes = g.Select(tp => tp.Partition).ToList() }).ToList(),
                        },
                    ],
                };
            }, (r, v) => (ErrorCode)(v >= 8 ? r.Groups.FirstOrDefault()?.ErrorCode ?? 0 : r.ErrorCode), cancellationToken).ConfigureAwait(false);

            var entries = new List<(TopicPartition Tp, long Offset, int Epoch, string? Metadata, ErrorCode Error)>();
            ErrorCode groupError;
            if (version >= 8)
            {
                var g = response.Groups.FirstOrDefault(x => x.GroupId == groupId) ?? response.Groups.FirstOrDefault();
                groupError = (ErrorCode)(g?.ErrorCode ?? 0);
                foreach (var t in g?.Topics ?? [])
                    foreach (var p in t.Partitions)
                        entries.Add((new TopicPartition(t.Name, p.PartitionIndex), p.CommittedOffset, p.CommittedLeaderEpoch, p.Metadata, (ErrorCode)p.ErrorCode));
            }
            else
            {
                groupError = (ErrorCode)response.ErrorCode;
                foreach (var t in response.Topics)
                    foreach (var p in t.Partitions)
                        entries.Add((new TopicPartition(t.Name, p.PartitionIndex), p.CommittedOffset, version >= 5 ? p.CommittedLeaderEpoch : -1, p.Metadata, (ErrorCode)p.ErrorCode));
            }
            if (groupError != ErrorCode.None) throw KafkaException.FromCode(groupError, $"fetching the committed offsets of group '{groupId}'");
            var failures = new Dictionary<string, KafkaException>();
            var result = new Dictionary<TopicPartition, OffsetAndMetadata>();
            foreach (var e in entries)
            {
                if (e.Error != ErrorCode.None)
                {
                    if (KafkaErrors.IsRetriable(e.Error)) throw KafkaException.FromCode(e.Error, $"fetching the committed offset of {e.Tp} for group '{groupId}'", null, e.Tp);
                    failures[e.Tp.ToString()] = KafkaException.FromCode(e.Error, $"fetching the committed offset of {e.Tp} for group '{groupId}'", null, e.Tp);
                    continue;
                }
                if (e.Offset < 0) continue;
                result[e.Tp] = new OffsetAndMetadata(e.Offset, e.Metadata, e.Epoch >= 0 ? e.Epoch : null);
            }
            if (failures.Count > 0) throw new KafkaOperationException("OffsetFetch", failures);
            return (IReadOnlyDictionary<TopicPartition, OffsetAndMetadata>)result;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Commits offsets for a group without joining it (generation -1, no member id), as tools and manually assigned
    /// consumers do. The coordinator accepts this only while the group has no active members; otherwise this throws
    /// a <see cref="KafkaException"/> with <see cref="ErrorCode.UnknownMemberId"/> (or the rebalance error it met).
    /// </summary>
    public async Task CommitGroupOffsetsAsync(string groupId, IReadOnlyDictionary<TopicPartition, OffsetAndMetadata> offsets, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentNullException.ThrowIfNull(offsets);
        if (offsets.Count == 0) return;
        foreach (var (tp, o) in offsets)
            if (o.Offset < 0) throw new ArgumentOutOfRangeException(nameof(offsets), $"offset {o.Offset} for {tp} is negative");
        var byTopic = offsets.GroupBy(o => o.Key.Topic).ToList();
        static ErrorCode FirstError(OffsetCommitResponse r) =>
            (ErrorCode)(r.Topics.SelectMany(t => t.Partitions).Select(p => p.ErrorCode).FirstOrDefault(e => e != 0));
        var (response, _) = await _cluster.SendToCoordinatorAsync<OffsetCommitRequest, OffsetCommitResponse>(groupId, v => new OffsetCommitRequest
        {
            GroupId = groupId,
            GenerationIdOrMemberEpoch = -1,
            MemberId = "",
            GroupInstanceId = null,
            RetentionTimeMs = -1,
            Topics = byTopic.Select(g => new OffsetCommitRequest.OffsetCommitRequestTopic
            {
                Name = g.Key,
                Partitions = g.Select(o => new OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
                {
                    PartitionIndex = o.Key.Partition,
                    CommittedOffset = o.Value.Offset,
                    CommittedLeaderEpoch = o.Value.LeaderEpoch ?? -1,
                    CommitTimestamp = -1,
                    CommittedMetadata = o.Value.Metadata ?? "",
                }).ToList(),
            }).ToList(),
        }, (r, _) => FirstError(r), cancellationToken).ConfigureAwait(false);

        var failures = new Dictionary<string, KafkaException>();
        foreach (var t in response.Topics)
            foreach (var p in t.Partitions)
            {
                var error = (ErrorCode)p.ErrorCode;
                if (error == ErrorCode.None) continue;
                var tp = new TopicPartition(t.Name, p.PartitionIndex);
                if (error is ErrorCode.UnknownMemberId or ErrorCode.IllegalGeneration or ErrorCode.RebalanceInProgress or ErrorCode.FencedInstanceId)
                {
                    throw new KafkaException(error,
                        $"cannot commit offsets for group '{groupId}': it has active members, and a commit from outside the group is only accepted " +
                        $"while the group is empty (stop its consumers first) [{KafkaErrors.Describe(error)}]");
                }
                failures[tp.ToString()] = KafkaException.FromCode(error, $"committing the offset of {tp} for group '{groupId}'", null, tp);
            }
        if (failures.Count > 0) throw new KafkaOperationException("OffsetCommit", failures);
    }

    /// <summary>Deletes a group's committed offsets for some partitions (OffsetDelete; refused for topics the group's members subscribe to).</summary>
    public async Task DeleteGroupOffsetsAsync(string groupId, IEnumerable<TopicPartition> partitions, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        var list = partitions.Distinct().ToList();
        if (list.Count == 0) return;
        var (response, _) = await _cluster.SendToCoordinatorAsync<OffsetDeleteRequest, OffsetDeleteResponse>(groupId, v => new OffsetDeleteRequest
        {
            GroupId = groupId,
            Topics = list.GroupBy(tp => tp.Topic).Select(g => new OffsetDeleteRequest.OffsetDeleteRequestTopic
            {
                Name = g.Key,
                Partitions = g.Select(tp => new OffsetDeleteRequest.OffsetDeleteRequestTopic.OffsetDeleteRequestPartition { PartitionIndex = tp.Partition }).ToList(),
            }).ToList(),
        }, (r, _) => (ErrorCode)r.ErrorCode, cancellationToken).ConfigureAwait(false);
        if (response.ErrorCode != 0) throw KafkaException.FromCode((ErrorCode)response.ErrorCode, $"deleting offsets of group '{groupId}'");
        var failures = new Dictionary<string, KafkaException>();
        foreach (var t in response.Topics)
            foreach (var p in t.Partitions)
                if (p.ErrorCode != 0)
                {
                    var tp = new TopicPartition(t.Name, p.PartitionIndex);
                    failures[tp.ToString()] = KafkaException.FromCode((ErrorCode)p.ErrorCode, $"deleting the offset of {tp} for group '{groupId}'", null, tp);
                }
        if (failures.Count > 0) throw new KafkaOperationException("OffsetDelete", failures);
    }

    // ------------------------------------------------------------------ groups

    /// <summary>
    /// The groups of every broker, optionally only those in the given states ("Empty", "Stable", ...; brokers too old to
    /// filter by state report all their groups).
    /// </summary>
    public async Task<IReadOnlyList<GroupListing>> ListGroupsAsync(IEnumerable<string>? states = null, CancellationToken cancellationToken = default)
    {
        var filter = states?.ToList() ?? [];
        await _cluster.RetryAsync(_ => _cluster.RefreshMetadataAsync([], false, cancellationToken), cancellationToken).ConfigureAwait(false);
        var brokers = _cluster.Brokers.Keys.ToList();
        var perBroker = await Task.WhenAll(brokers.Select(node => _cluster.RetryAsync(async _ =>
        {
            var (response, version) = await _cluster.SendAsync<ListGroupsRequest, ListGroupsResponse>(node, v => new ListGroupsRequest { StatesFilter = filter }, cancellationToken).ConfigureAwait(false);
            if (response.ErrorCode != 0) throw KafkaException.FromCode((ErrorCode)response.ErrorCode, $"ListGroups on broker {node}");
            return response.Groups.Select(g => new GroupListing(g.GroupId, g.ProtocolType, version >= 4 ? g.GroupState : null, version >= 5 ? g.GroupType : null)).ToList();
        }, cancellationToken))).ConfigureAwait(false);
        return perBroker.SelectMany(x => x).DistinctBy(g => g.GroupId).OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Groups with their state, protocol and members (an unknown group is reported in state "Dead"). The groups of one
    /// coordinator are described in one request; a group whose coordinator moved meanwhile is asked again on its own.
    /// </summary>
    public async Task<IReadOnlyList<GroupDescription>> DescribeGroupsAsync(IEnumerable<string> groupIds, CancellationToken cancellationToken = default)
    {
        var ids = groupIds.Distinct(StringComparer.Ordinal).ToList();
        foreach (var id in ids) ArgumentException.ThrowIfNullOrEmpty(id, nameof(groupIds));
        var batched = await DescribeGroupsBatchedAsync(ids, cancellationToken).ConfigureAwait(false);
        var described = await Task.WhenAll(ids.Select(async id =>
        {
            if (batched.TryGetValue(id, out var found)) return (id, Describe(found.Group, found.Coordinator), (KafkaException?)null);
            var (response, _) = await _cluster.SendToCoordinatorAsync<DescribeGroupsRequest, DescribeGroupsResponse>(id,
                v => new DescribeGroupsRequest { Groups = [id] }, (r, _) => (ErrorCode)(r.Groups.FirstOrDefault()?.ErrorCode ?? 0), cancellationToken).ConfigureAwait(false);
            var g = response.Groups.FirstOrDefault(x => x.GroupId == id) ?? response.Groups.FirstOrDefault()
                ?? throw new KafkaException(ErrorCode.UnknownServerError, $"DescribeGroups for '{id}' returned nothing");
            if (g.ErrorCode != 0) return (id, (GroupDescription?)null, KafkaException.FromCode((ErrorCode)g.ErrorCode, $"describing group '{id}'"));
            int coordinator = await _cluster.FindCoordinatorAsync(id, cancellationToken).ConfigureAwait(false);
            return (id, Describe(g, coordinator), (KafkaException?)null);
        })).ConfigureAwait(false);
        var failures = described.Where(d => d.Item3 is not null).ToDictionary(d => d.id, d => d.Item3!);
        if (failures.Count > 0) throw new KafkaOperationException("DescribeGroups", failures);
        return described.Select(d => d.Item2!).ToList();

        static GroupDescription Describe(DescribeGroupsResponse.DescribedGroup g, int coordinator) =>
            new(g.GroupId, g.GroupState, g.ProtocolType, g.ProtocolData, g.Members.Select(m => DescribeMember(g.ProtocolType, m)).ToList(), coordinator);
    }

    /// <summary>
    /// One DescribeGroups per coordinator for several groups: the groups it answered without an error. The others (and
    /// all of them when a lookup or a request fails) are left to the one-group path and its retries.
    /// </summary>
    private async Task<Dictionary<string, (DescribeGroupsResponse.DescribedGroup Group, int Coordinator)>> DescribeGroupsBatchedAsync(
        IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, (DescribeGroupsResponse.DescribedGroup, int)>(StringComparer.Ordinal);
        if (ids.Count < 2) return found;
        var coordinators = await Task.WhenAll(ids.Select(async id =>
        {
            try { return (id, Node: await _cluster.FindCoordinatorAsync(id, cancellationToken).ConfigureAwait(false)); }
            catch (KafkaException) { return (id, Node: -1); }
        })).ConfigureAwait(false);
        await Task.WhenAll(coordinators.Where(c => c.Node >= 0).GroupBy(c => c.Node).Select(async batch =>
        {
            var names = batch.Select(c => c.id).ToList();
            try
            {
                var (response, _) = await _cluster.SendAsync<DescribeGroupsRequest, DescribeGroupsResponse>(batch.Key,
                    v => new DescribeGroupsRequest { Groups = names }, cancellationToken).ConfigureAwait(false);
                lock (found)
                    foreach (var g in response.Groups.Where(g => g.ErrorCode == 0 && names.Contains(g.GroupId)))
                        found[g.GroupId] = (g, batch.Key);
            }
            catch (KafkaException) { }
        })).ConfigureAwait(false);
        return found;
    }

    private static GroupMemberDescription DescribeMember(string protocolType, DescribeGroupsResponse.DescribedGroup.DescribedGroupMember m)
    {
        IReadOnlyList<string>? topics = null;
        IReadOnlyList<TopicPartition>? assignment = null;
        if (protocolType == "consumer")
        {
            try
            {
                if (m.MemberMetadata.Length > 0) topics = ConsumerProtocol.ReadSubscription(m.MemberMetadata).Topics;
            }
            catch (Exception) { topics = null; }
            try
            {
                if (m.MemberAssignment.Length > 0)
                    assignment = ConsumerProtocol.ReadAssignment(m.MemberAssignment).AssignedPartitions
                        .SelectMany(t => t.Partitions.Select(p => new TopicPartition(t.Topic, p))).OrderBy(tp => tp).ToList();
                else assignment = [];
            }
            catch (Exception) { assignment = null; }
        }
        return new GroupMemberDescription(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost, topics, assignment, m.MemberMetadata, m.MemberAssignment);
    }

    /// <summary>Deletes groups and their offsets; only groups without members can be deleted (else NON_EMPTY_GROUP).</summary>
    public async Task DeleteGroupsAsync(IEnumerable<string> groupIds, CancellationToken cancellationToken = default)
    {
        var ids = groupIds.Distinct(StringComparer.Ordinal).ToList();
        foreach (var id in ids) ArgumentException.ThrowIfNullOrEmpty(id, nameof(groupIds));
        var results = await Task.WhenAll(ids.Select(async id =>
        {
            var (response, _) = await _cluster.SendToCoordinatorAsync<DeleteGroupsRequest, DeleteGroupsResponse>(id,
                v => new DeleteGroupsRequest { GroupsNames = [id] }, (r, _) => (ErrorCode)(r.Results.FirstOrDefault()?.ErrorCode ?? 0), cancellationToken).ConfigureAwait(false);
            var error = (ErrorCode)(response.Results.FirstOrDefault(r => r.GroupId == id)?.ErrorCode ?? (short)ErrorCode.UnknownServerError);
            return (id, error);
        })).ConfigureAwait(false);
        var failures = results.Where(r => r.error != ErrorCode.None).ToDictionary(r => r.id, r => KafkaException.FromCode(r.error, $"deleting group '{r.id}'"));
        if (failures.Count > 0) throw new KafkaOperationException("DeleteGroups", failures);
    }

    // ------------------------------------------------------------------ configs

    /// <summary>The configs of one resource.</summary>
    public async Task<IReadOnlyList<ConfigEntry>> DescribeConfigsAsync(ConfigResource resource, CancellationToken cancellationToken = default) =>
        (await DescribeConfigsAsync([resource], cancellationToken: cancellationToken).ConfigureAwait(false))[resource];

    /// <summary>The configs of topics and brokers (broker configs are asked from that broker).</summary>
    public async Task<IReadOnlyDictionary<ConfigResource, IReadOnlyList<ConfigEntry>>> DescribeConfigsAsync(IEnumerable<ConfigResource> resources,
        bool includeSynonyms = false, bool includeDocumentation = false, CancellationToken cancellationToken = default)
    {
        var list = resources.Distinct().ToList();
        var result = new Dictionary<ConfigResource, IReadOnlyList<ConfigEntry>>();
        var failures = new Dictionary<string, KafkaException>();
        foreach (var group in list.GroupBy(NodeFor))
        {
            var response = await _cluster.RetryAsync(async _ =>
            {
                var (r, version) = await SendToResourceNodeAsync<DescribeConfigsRequest, DescribeConfigsResponse>(group.Key, v => new DescribeConfigsRequest
                {
                    IncludeSynonyms = includeSynonyms,
                    IncludeDocumentation = includeDocumentation,
                    Resources = group.Select(res => new DescribeConfigsRequest.DescribeConfigsResource
                    {
                        ResourceType = (sbyte)res.Type, ResourceName = res.Name, ConfigurationKeys = null,
                    }).ToList(),
                }, cancellationToken).ConfigureAwait(false);
                return (r, version);
            }, cancellationToken).ConfigureAwait(false);
            foreach (var r in response.r.Results)
            {
                var res = new ConfigResource((ConfigResourceType)r.ResourceType, r.ResourceName);
                if (r.ErrorCode != 0)
                {
                    failures[res.ToString()] = KafkaException.FromCode((ErrorCode)r.ErrorCode, $"describing the configs of {res}", r.ErrorMessage);
                    continue;
                }
                result[res] = r.Configs.Select(c => new ConfigEntry(
                    c.Name, c.Value,
                    response.version >= 1 ? (ConfigSource)c.ConfigSource : c.IsDefault ? ConfigSource.DefaultConfig : ConfigSource.Unknown,
                    c.ReadOnly, c.IsSensitive,
                    response.version >= 1 ? c.ConfigSource == (sbyte)ConfigSource.DefaultConfig : c.IsDefault,
                    response.version >= 3 ? (ConfigType)c.ConfigType : ConfigType.Unknown,
                    response.version >= 3 ? c.Documentation : null,
                    c.Synonyms.Select(s => new ConfigSynonym(s.Name, s.Value, (ConfigSource)s.Source)).ToList())).ToList();
            }
        }
        foreach (var res in list)
            if (!result.ContainsKey(res) && !failures.ContainsKey(res.ToString()))
                failures[res.ToString()] = new KafkaException(ErrorCode.UnknownServerError, $"DescribeConfigs did not answer for {res}");
        if (failures.Count > 0) throw new KafkaOperationException("DescribeConfigs", failures);
        return result;
    }

    /// <summary>Changes configs of one resource (see <see cref="AlterConfigsAsync(IReadOnlyDictionary{ConfigResource, IReadOnlyList{ConfigAlteration}}, bool, CancellationToken)"/>).</summary>
    public Task AlterConfigsAsync(ConfigResource resource, IEnumerable<ConfigAlteration> alterations, CancellationToken cancellationToken = default) =>
        AlterConfigsAsync(new Dictionary<ConfigResource, IReadOnlyList<ConfigAlteration>> { [resource] = alterations.ToList() }, false, cancellationToken);

    /// <summary>
    /// Changes configs: set, delete (back to the default), append to or subtract from list values. Uses
    /// IncrementalAlterConfigs; against brokers without it, reads the current overrides and replaces them all with
    /// AlterConfigs (not atomic against concurrent changes by others).
    /// </summary>
    public async Task AlterConfigsAsync(IReadOnlyDictionary<ConfigResource, IReadOnlyList<ConfigAlteration>> alterations, bool validateOnly = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(alterations);
        var failures = new Dictionary<string, KafkaException>();
        foreach (var group in alterations.Keys.GroupBy(NodeFor))
        {
            var connection = group.Key is int node
                ? await _cluster.GetConnectionAsync(node, cancellationToken).ConfigureAwait(false)
                : await _cluster.GetAnyConnectionAsync(cancellationToken).ConfigureAwait(false);
            List<(ConfigResource Resource, ErrorCode Error, string? Message)> outcomes;
            if (_cluster.Supports(connection, ApiKey.IncrementalAlterConfigs))
            {
                outcomes = await _cluster.RetryAsync(async _ =>
                {
                    var (response, _) = await SendToResourceNodeAsync<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(group.Key, v => new IncrementalAlterConfigsRequest
                    {
                        ValidateOnly = validateOnly,
                        Resources = group.Select(res => new IncrementalAlterConfigsRequest.AlterConfigsResource
                        {
                            ResourceType = (sbyte)res.Type,
                            ResourceName = res.Name,
                            Configs = alterations[res].Select(a => new IncrementalAlterConfigsRequest.AlterConfigsResource.AlterableConfig
                            {
                                Name = a.Name, ConfigOperation = (sbyte)a.Op, Value = a.Op == AlterConfigOpType.Delete ? null : a.Value,
                            }).ToList(),
                        }).ToList(),
                    }, cancellationToken).ConfigureAwait(false);
                    return response.Responses.Select(r => (new ConfigResource((ConfigResourceType)r.ResourceType, r.ResourceName), (ErrorCode)r.ErrorCode, r.ErrorMessage)).ToList();
                }, cancellationToken).ConfigureAwait(false);
            }
            else if (_cluster.Supports(connection, ApiKey.AlterConfigs))
            {
                _logger.LogDebug("Broker {Node} lacks IncrementalAlterConfigs; replacing configs with AlterConfigs", connection.NodeId);
                var current = await DescribeConfigsAsync(group, cancellationToken: cancellationToken).ConfigureAwait(false);
                var full = group.ToDictionary(res => res, res => ApplyAlterations(res, current[res], alterations[res]));
                outcomes = await _cluster.RetryAsync(async _ =>
                {
                    var (response, _) = await SendToResourceNodeAsync<AlterConfigsRequest, AlterConfigsResponse>(group.Key, v => new AlterConfigsRequest
                    {
                        ValidateOnly = validateOnly,
                        Resources = group.Select(res => new AlterConfigsRequest.AlterConfigsResource
                        {
                            ResourceType = (sbyte)res.Type,
                            ResourceName = res.Name,
                            Configs = full[res].Select(kv => new AlterConfigsRequest.AlterConfigsResource.AlterableConfig { Name = kv.Key, Value = kv.Value }).ToList(),
                        }).ToList(),
                    }, cancellationToken).ConfigureAwait(false);
                    return response.Responses.Select(r => (new ConfigResource((ConfigResourceType)r.ResourceType, r.ResourceName), (ErrorCode)r.ErrorCode, r.ErrorMessage)).ToList();
                }, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                throw new KafkaException(ErrorCode.UnsupportedVersion,
                    $"broker {connection.NodeId} at {connection.EndPoint} supports neither IncrementalAlterConfigs nor AlterConfigs: configs cannot be changed through it");
            }
            foreach (var (res, error, message) in outcomes)
                if (error != ErrorCode.None) failures[res.ToString()] = KafkaException.FromCode(error, $"altering the configs of {res}", message);
        }
        if (failures.Count > 0) throw new KafkaOperationException("AlterConfigs", failures);
    }

    /// <summary>The complete override set AlterConfigs needs: the current dynamic overrides with the alterations applied.</summary>
    internal static Dictionary<string, string?> ApplyAlterations(ConfigResource resource, IReadOnlyList<ConfigEntry> current, IReadOnlyList<ConfigAlteration> alterations)
    {
        var overrideSource = resource.Type switch
        {
            ConfigResourceType.Topic => ConfigSource.TopicConfig,
            ConfigResourceType.Broker when resource.Name.Length == 0 => ConfigSource.DynamicDefaultBrokerConfig,
            ConfigResourceType.Broker => ConfigSource.DynamicBrokerConfig,
            ConfigResourceType.BrokerLogger => ConfigSource.DynamicBrokerLoggerConfig,
            ConfigResourceType.Group => ConfigSource.GroupConfig,
            ConfigResourceType.ClientMetrics => ConfigSource.ClientMetricsConfig,
            _ => ConfigSource.Unknown,
        };
        var full = current.Where(e => e.Source == overrideSource && !e.IsSensitive).ToDictionary(e => e.Name, e => e.Value, StringComparer.Ordinal);
        var effective = current.ToDictionary(e => e.Name, e => e.Value, StringComparer.Ordinal);
        foreach (var a in alterations)
        {
            switch (a.Op)
            {
                case AlterConfigOpType.Set:
                    full[a.Name] = a.Value;
                    break;
                case AlterConfigOpType.Delete:
                    full.Remove(a.Name);
                    break;
                case AlterConfigOpType.Append:
                case AlterConfigOpType.Subtract:
                {
                    var items = (full.TryGetValue(a.Name, out var v) ? v : effective.GetValueOrDefault(a.Name))?
                        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList() ?? [];
                    var changes = (a.Value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (a.Op == AlterConfigOpType.Append) items.AddRange(changes.Where(c => !items.Contains(c)));
                    else items.RemoveAll(i => changes.Contains(i));
                    full[a.Name] = string.Join(",", items);
                    break;
                }
            }
        }
        return full;
    }

    /// <summary>Broker (and broker logger) resources are served by that broker; everything else by any broker (null).</summary>
    private static int? NodeFor(ConfigResource resource) =>
        resource.Type is ConfigResourceType.Broker or ConfigResourceType.BrokerLogger && int.TryParse(resource.Name, out int node) ? node : null;

    private Task<(TResponse Response, short Version)> SendToResourceNodeAsync<TRequest, TResponse>(int? node, Func<short, TRequest> build, CancellationToken cancellationToken)
        where TRequest : class, new() where TResponse : class, new() =>
        node is int n ? _cluster.SendAsync<TRequest, TResponse>(n, build, cancellationToken) : _cluster.SendToAnyAsync<TRequest, TResponse>(build, cancellationToken);
}
