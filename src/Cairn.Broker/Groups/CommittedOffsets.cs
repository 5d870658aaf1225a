using System.Text;
using Cairn.Protocol;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups;

internal sealed record OffsetCommitEntry(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata);

internal sealed record PartitionError(string Topic, int Partition, ErrorCode Error);

/// <summary>
/// Groups' committed offsets: cached in each <see cref="ConsumerGroup"/>, made durable in the <see cref="IGroupStore"/>
/// before a commit is acknowledged, and expired like Kafka's offsets.retention (checked every
/// offsets.retention.check.interval).
/// </summary>
internal sealed class CommittedOffsets : IDisposable
{
    private readonly GroupRegistry _groups;
    private readonly IGroupStore _store;
    private readonly LogManager _logs;
    private readonly GroupCoordinatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _retentionTimer;
    private long _commitSequence;

    public CommittedOffsets(GroupRegistry groups, IGroupStore store, LogManager logs, GroupCoordinatorOptions options, TimeProvider time, ILogger logger)
    {
        _groups = groups;
        _store = store;
        _logs = logs;
        _options = options;
        _time = time;
        _logger = logger;
        _retentionTimer = time.CreateTimer(_ => _ = ExpireSafelyAsync(), null, options.OffsetsRetentionCheckInterval, options.OffsetsRetentionCheckInterval);
    }

    /// <summary>Brings back a group's stored offsets; returns how many.</summary>
    public int Restore(string groupId, IReadOnlyList<CommittedOffset> committed)
    {
        var group = _groups.GetOrCreate(groupId);
        lock (group)
            foreach (var c in committed) group.Offsets[(c.Topic, c.Partition)] = c;
        return committed.Count;
    }

    /// <summary>
    /// Commits offsets for a member of the current generation, or (generation -1, empty member id) for a
    /// group without active members. Returns a group-level error (applied to every partition) or per-partition results.
    /// </summary>
    public async Task<IReadOnlyList<PartitionError>> CommitAsync(string groupId, int generation, string memberId, string? groupInstanceId,
        IReadOnlyList<OffsetCommitEntry> entries, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(groupId)) return AllFailed(entries, ErrorCode.InvalidGroupId);
        var group = generation < 0 && memberId == "" ? _groups.GetOrCreate(groupId) : _groups.Find(groupId);
        if (group is null) return AllFailed(entries, generation < 0 ? ErrorCode.UnknownMemberId : ErrorCode.IllegalGeneration);

        var results = new PartitionError[entries.Count];
        var accepted = new List<CommittedOffset>(entries.Count);
        long sequence;
        lock (group)
        {
            var error = CheckCommit(group, generation, memberId, groupInstanceId);
            if (error != ErrorCode.None) return AllFailed(entries, error);
            var now = _time.GetUtcNow();
            for (int i = 0; i < entries.Count; i++)
            {
                var e = entries[i];
                var partitionError = ErrorCode.None;
                Guid topicId = Guid.Empty;
                if (e.Metadata is not null && Encoding.UTF8.GetByteCount(e.Metadata) > _options.MaxOffsetMetadataBytes) partitionError = ErrorCode.OffsetMetadataTooLarge;
                else if (!_logs.TryGetTopic(e.Topic, out var topic) || e.Partition < 0 || e.Partition >= topic.PartitionCount) partitionError = ErrorCode.UnknownTopicOrPartition;
                else topicId = topic.Id;
                results[i] = new PartitionError(e.Topic, e.Partition, partitionError);
                if (partitionError == ErrorCode.None)
                    accepted.Add(new CommittedOffset(e.Topic, topicId, e.Partition, e.Offset, e.LeaderEpoch, e.Metadata, now));
            }
            // Taken under the group's lock, so within a group sequences follow the order the commits were accepted in.
            sequence = Interlocked.Increment(ref _commitSequence);
        }
        if (accepted.Count == 0) return results;
        await _store.CommitOffsetsAsync([new GroupOffsetCommit(groupId, accepted)], cancellationToken);
        lock (group)
        {
            foreach (var c in accepted)
            {
                var key = (c.Topic, c.Partition);
                if (group.OffsetSequence.GetValueOrDefault(key) > sequence) continue; // a newer commit already landed
                group.Offsets[key] = c;
                group.OffsetSequence[key] = sequence;
            }
        }
        return results;
    }

    private static ErrorCode CheckCommit(ConsumerGroup group, int generation, string memberId, string? groupInstanceId)
    {
        if (group.State == GroupState.Dead) return ErrorCode.CoordinatorNotAvailable;
        if (generation < 0 && memberId == "" && group.State == GroupState.Empty) return ErrorCode.None; // a standalone (manual assignment) commit
        if (groupInstanceId is not null && group.StaticMembers.TryGetValue(groupInstanceId, out var current) && current != memberId)
            return ErrorCode.FencedInstanceId;
        if (group.State == GroupState.CompletingRebalance) return ErrorCode.RebalanceInProgress;
        if (!group.Members.ContainsKey(memberId)) return ErrorCode.UnknownMemberId;
        if (generation != group.Generation) return ErrorCode.IllegalGeneration;
        return ErrorCode.None;
    }

    private static PartitionError[] AllFailed(IReadOnlyList<OffsetCommitEntry> entries, ErrorCode error) =>
        entries.Select(e => new PartitionError(e.Topic, e.Partition, error)).ToArray();

    /// <summary>Committed offsets of a group: of the given partitions (unknown ones absent), or all, in topic and partition order, when null.</summary>
    public IReadOnlyList<CommittedOffset> Fetch(string groupId, IReadOnlyList<(string Topic, int Partition)>? partitions)
    {
        var group = _groups.Find(groupId);
        if (group is null) return [];
        lock (group)
        {
            if (partitions is null) return group.Offsets.Values.OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition).ToList();
            var found = new List<CommittedOffset>(partitions.Count);
            foreach (var p in partitions) if (group.Offsets.TryGetValue(p, out var c)) found.Add(c);
            return found;
        }
    }

    /// <summary>OffsetDelete (KIP-496): only partitions of topics no active consumer member subscribes to.</summary>
    public async Task<(ErrorCode Error, IReadOnlyList<PartitionError> Partitions)> DeleteAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions,
        CancellationToken cancellationToken)
    {
        var group = _groups.Find(groupId);
        if (group is null) return (ErrorCode.GroupIdNotFound, []);
        var results = new List<PartitionError>();
        var deletable = new List<(string, int)>();
        lock (group)
        {
            if (group.State == GroupState.Dead) return (ErrorCode.GroupIdNotFound, []);
            HashSet<string>? subscribed = null;
            if (!group.IsEmpty)
            {
                if (group.ProtocolType != "consumer") return (ErrorCode.NonEmptyGroup, []);
                subscribed = group.SubscribedTopics();
            }
            foreach (var p in partitions)
            {
                if (subscribed?.Contains(p.Topic) == true) { results.Add(new PartitionError(p.Topic, p.Partition, ErrorCode.GroupSubscribedToTopic)); continue; }
                if (!_logs.TryGetTopic(p.Topic, out _)) { results.Add(new PartitionError(p.Topic, p.Partition, ErrorCode.UnknownTopicOrPartition)); continue; }
                results.Add(new PartitionError(p.Topic, p.Partition, ErrorCode.None));
                deletable.Add(p);
            }
        }
        if (deletable.Count > 0)
        {
            await _store.DeleteOffsetsAsync(groupId, deletable, cancellationToken);
            lock (group) Forget(group, deletable);
        }
        return (ErrorCode.None, results);
    }

    /// <summary>Drops committed offsets of a deleted topic from every group.</summary>
    public async Task OnTopicDeletedAsync(string topic, CancellationToken cancellationToken)
    {
        await _store.DeleteTopicOffsetsAsync(topic, cancellationToken);
        foreach (var g in _groups.Snapshot())
            lock (g) Forget(g, g.Offsets.Keys.Where(k => k.Topic == topic).ToList());
    }

    private static void Forget(ConsumerGroup group, IEnumerable<(string Topic, int Partition)> partitions)
    {
        foreach (var key in partitions)
        {
            group.Offsets.Remove(key);
            group.OffsetSequence.Remove(key);
        }
    }

    // ------------------------------------------------------------------ Retention

    /// <summary>
    /// Expires committed offsets like Kafka: for an empty group, offsets.retention after it became empty
    /// (groups that never had members: after the commit itself). A group left with no offsets and no members is removed.
    /// </summary>
    public async Task<int> ExpireAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        int expired = 0;
        foreach (var group in _groups.Snapshot())
        {
            List<(string, int)> expiring;
            lock (group)
            {
                if (group.State != GroupState.Empty) continue;
                expiring = group.Offsets.Values.Where(c => IsExpired(group.EmptySince, c, now)).Select(c => (c.Topic, c.Partition)).ToList();
            }
            if (expiring.Count > 0)
            {
                await _store.DeleteOffsetsAsync(group.GroupId, expiring, cancellationToken);
                lock (group) Forget(group, expiring);
                expired += expiring.Count;
                _logger.LogInformation("group {Group}: expired {Count} committed offset(s)", group.GroupId, expiring.Count);
            }
            bool remove;
            lock (group)
            {
                remove = group.State == GroupState.Empty && group.Offsets.Count == 0 && group.PendingMembers.Count == 0;
                if (remove) group.State = GroupState.Dead;
            }
            if (remove)
            {
                await _store.DeleteGroupAsync(group.GroupId, cancellationToken);
                _groups.Remove(group);
            }
        }
        return expired;
    }

    /// <summary>An empty group's offset expires offsets.retention after the group became empty, or after its commit when the group never had members.</summary>
    private bool IsExpired(DateTimeOffset? emptySince, CommittedOffset offset, DateTimeOffset now) =>
        (emptySince ?? offset.CommitTime) + _options.OffsetsRetention <= now;

    private async Task ExpireSafelyAsync()
    {
        try { await ExpireAsync(CancellationToken.None); }
        catch (Exception e) { _logger.LogError(e, "offset expiration failed"); }
    }

    public void Dispose() => _retentionTimer.Dispose();
}
