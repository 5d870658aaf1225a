using Cairn.Protocol;
using Cairn.Protocol.Messages;

namespace Cairn.Client.Internal;

internal readonly record struct ListedOffset(long Offset, long Timestamp, int LeaderEpoch);

/// <summary>Requests that go to each partition's leader, with retries for partitions whose leader moved.</summary>
internal static class PartitionRequests
{
    public const long LatestTimestamp = -1, EarliestTimestamp = -2, MaxTimestamp = -3;

    public readonly record struct PartitionOutcome<T>(ErrorCode Error, string? Message, T Value);

    /// <summary>
    /// Sends <paramref name="send"/> to the leader of each group of partitions, again for partitions that failed with
    /// a retriable error (after refreshing metadata), up to the client's retry count. Returns what succeeded and what failed.
    /// </summary>
    public static async Task<(Dictionary<TopicPartition, T> Results, Dictionary<TopicPartition, KafkaException> Failures)> SendAsync<T>(
        KafkaCluster cluster, IEnumerable<TopicPartition> partitions, string operation,
        Func<int, List<TopicPartition>, Task<Dictionary<TopicPartition, PartitionOutcome<T>>>> send, CancellationToken cancellationToken)
    {
        var results = new Dictionary<TopicPartition, T>();
        var failures = new Dictionary<TopicPartition, KafkaException>();
        var remaining = new HashSet<TopicPartition>(partitions);
        var lastErrors = new Dictionary<TopicPartition, KafkaException>();
        for (int attempt = 0; remaining.Count > 0; attempt++)
        {
            bool last = attempt >= cluster.Options.Retries;
            var byLeader = new Dictionary<int, List<TopicPartition>>();
            // Leaders are looked up together: a leaderless partition waiting out its retries holds up only itself.
            var lookups = remaining.Select(async tp =>
            {
                try { return (tp, Leader: await cluster.GetLeaderAsync(tp, allowAutoCreate: false, cancellationToken).ConfigureAwait(false), Error: (KafkaException?)null); }
                catch (KafkaException e) { return (tp, Leader: -1, Error: e); }
            }).ToList();
            foreach (var (tp, leader, error) in await Task.WhenAll(lookups).ConfigureAwait(false))
            {
                if (error is not null)
                {
                    // The metadata lookup has already retried on its own.
                    failures[tp] = WithPartition(error, tp, operation);
                    remaining.Remove(tp);
                    continue;
                }
                if (!byLeader.TryGetValue(leader, out var list)) byLeader[leader] = list = [];
                list.Add(tp);
            }
            var sends = byLeader.Select(async g =>
            {
                try
                {
                    return (g.Value, Outcomes: await send(g.Key, g.Value).ConfigureAwait(false), Error: (KafkaException?)null);
                }
                catch (KafkaException e)
                {
                    return (g.Value, Outcomes: (Dictionary<TopicPartition, PartitionOutcome<T>>?)null, Error: e);
                }
            }).ToList();
            foreach (var (tps, outcomes, error) in await Task.WhenAll(sends).ConfigureAwait(false))
            {
                foreach (var tp in tps)
                {
                    KafkaException? e = error;
                    if (e is null)
                    {
                        if (!outcomes!.TryGetValue(tp, out var outcome))
                            e = new KafkaException(ErrorCode.UnknownServerError, $"{operation} for {tp}: the broker's response does not mention the partition", null, tp);
                        else if (outcome.Error == ErrorCode.None)
                        {
                            results[tp] = outcome.Value;
                            remaining.Remove(tp);
                            continue;
                        }
                        else e = KafkaException.FromCode(outcome.Error, $"{operation} for {tp}", outcome.Message, tp);
                    }
                    if (KafkaErrors.InvalidatesMetadata(e.Error)) cluster.InvalidateTopic(tp.Topic);
                    if (!e.IsRetriable || last)
                    {
                        failures[tp] = WithPartition(e, tp, operation);
                        remaining.Remove(tp);
                    }
                    else lastErrors[tp] = e;
                }
            }
            if (remaining.Count > 0) await Task.Delay(cluster.Backoff(attempt), cancellationToken).ConfigureAwait(false);
        }
        return (results, failures);
    }

    private static KafkaException WithPartition(KafkaException e, TopicPartition tp, string operation) =>
        e.TopicPartition is null ? new KafkaException(e.Error, $"{operation} for {tp}: {e.Message}", e, tp) : e;

    /// <summary>
    /// ListOffsets: per partition a timestamp, or <see cref="LatestTimestamp"/>, <see cref="EarliestTimestamp"/>,
    /// <see cref="MaxTimestamp"/>. A timestamp after the last record answers offset -1.
    /// </summary>
    public static Task<(Dictionary<TopicPartition, ListedOffset> Results, Dictionary<TopicPartition, KafkaException> Failures)> ListOffsetsAsync(
        KafkaCluster cluster, IReadOnlyDictionary<TopicPartition, long> query, IsolationLevel isolation, CancellationToken cancellationToken) =>
        SendAsync<ListedOffset>(cluster, query.Keys, "ListOffsets", async (leader, tps) =>
        {
            var connection = await cluster.GetConnectionAsync(leader, cancellationToken).ConfigureAwait(false);
            if (tps.Any(tp => query[tp] == MaxTimestamp))
            {
                short available = connection.GetVersion(ApiKey.ListOffsets);
                if (available < 7)
                    throw new KafkaException(ErrorCode.UnsupportedVersion, $"broker {leader} cannot list the offset of the largest timestamp (needs ListOffsets v7, it offers v{available})");
            }
            var (response, version) = await cluster.SendAsync<ListOffsetsRequest, ListOffsetsResponse>(connection, v => new ListOffsetsRequest
            {
                ReplicaId = -1,
                IsolationLevel = (sbyte)isolation,
                TimeoutMs = (int)cluster.Options.RequestTimeout.TotalMilliseconds,
                Topics = tps.GroupBy(tp => tp.Topic).Select(g => new ListOffsetsRequest.ListOffsetsTopic
                {
                    Name = g.Key,
                    Partitions = g.Select(tp => new ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition
                    {
                        PartitionIndex = tp.Partition, Timestamp = query[tp], MaxNumOffsets = 1, CurrentLeaderEpoch = -1,
                    }).ToList(),
                }).ToList(),
            }, cancellationToken).ConfigureAwait(false);
            var outcomes = new Dictionary<TopicPartition, PartitionOutcome<ListedOffset>>();
            foreach (var t in response.Topics)
                foreach (var p in t.Partitions)
                {
                    long offset = version == 0 ? (p.OldStyleOffsets.Count > 0 ? p.OldStyleOffsets[0] : -1) : p.Offset;
                    outcomes[new TopicPartition(t.Name, p.PartitionIndex)] =
                        new((ErrorCode)p.ErrorCode, null, new ListedOffset(offset, version == 0 ? -1 : p.Timestamp, version >= 4 ? p.LeaderEpoch : -1));
                }
            return outcomes;
        }, cancellationToken);

    /// <summary>Throws a <see cref="KafkaOperationException"/> when anything failed.</summary>
    public static void ThrowIfAny(string operation, Dictionary<TopicPartition, KafkaException> failures)
    {
        if (failures.Count == 0) return;
        throw new KafkaOperationException(operation, failures.OrderBy(f => f.Key).ToDictionary(f => f.Key.ToString(), f => f.Value));
    }
}
