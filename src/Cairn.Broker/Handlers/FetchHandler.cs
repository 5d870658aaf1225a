using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;
using Cairn.Storage;
using PartitionData = Cairn.Protocol.Messages.FetchResponse.FetchableTopicResponse.PartitionData;

namespace Cairn.Broker.Handlers;

/// <summary>
/// Fetch: returns stored batches as they are (copied from the segment file into the response once),
/// long-polls until min_bytes arrive or max_wait_ms passes — woken by appends, never by polling — and
/// keeps KIP-227 fetch sessions so incremental requests only carry what changed.
/// </summary>
internal sealed class FetchHandler(ITopicCatalog topics, FetchSessionCache fetchSessions) : ApiHandler<FetchRequest, FetchResponse>
{
    private const sbyte ReadCommitted = 1;

    public override VersionRange Versions => new(4, 17);

    /// <summary>One partition to read in this request, with the session entry that tracks it (if any).</summary>
    private sealed class Target(string topic, Guid topicId, int partition, long fetchOffset, int maxBytes, FetchSessionPartition? cached)
    {
        public string Topic { get; } = topic;
        public Guid TopicId { get; } = topicId;
        public int Partition { get; } = partition;
        public long FetchOffset { get; } = fetchOffset;
        public int MaxBytes { get; } = maxBytes;
        public FetchSessionPartition? Cached { get; } = cached;
        public ErrorCode Error { get; init; }
        public IPartitionLog? Log { get; init; }
    }

    protected override async ValueTask<FetchResponse?> HandleAsync(RequestContext context, FetchRequest request, CancellationToken cancellationToken)
    {
        short version = context.Version;
        FetchSession? session = null;
        bool incremental = false;
        if (version >= 7)
        {
            var sessions = fetchSessions;
            switch (request.SessionEpoch)
            {
                case FetchSessionCache.FinalEpoch:
                    if (request.SessionId != 0) sessions.Remove(request.SessionId);
                    break;
                case FetchSessionCache.InitialEpoch:
                    if (request.SessionId != 0) sessions.Remove(request.SessionId);
                    session = sessions.Create();
                    break;
                default:
                    session = sessions.Get(request.SessionId);
                    if (session is null) return new FetchResponse { ErrorCode = (short)ErrorCode.FetchSessionIdNotFound };
                    if (session.Epoch != request.SessionEpoch) return new FetchResponse { ErrorCode = (short)ErrorCode.InvalidFetchSessionEpoch };
                    incremental = true;
                    break;
            }
        }

        List<Target> targets;
        if (session is null) targets = TargetsFromRequest(request, version, null);
        else
        {
            lock (session)
            {
                targets = incremental ? UpdateSession(session, request, version) : TargetsFromRequest(request, version, session);
            }
        }

        var response = new FetchResponse { SessionId = session?.Id ?? 0 };
        var results = new PartitionData[targets.Count];
        long deadline = Environment.TickCount64 + Math.Max(0, request.MaxWaitMs);
        AppendWaiter? waiter = null;
        while (true)
        {
            var (bytes, anyError) = ReadAll(targets, results, request);
            long remaining = deadline - Environment.TickCount64;
            if (bytes >= request.MinBytes || anyError || remaining <= 0 || targets.Count == 0) break;
            // Awaited here rather than in a helper, so a wait adds no async state machine of its own.
            waiter ??= RentWaiter();
            WatchTargets(waiter, targets, results);
            await waiter.WaitAsync(TimeSpan.FromMilliseconds(remaining), cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
        }
        if (waiter is not null) ReturnWaiter(waiter);

        BuildResponse(response, targets, results, version, incremental);
        // A new session expects epoch 1 next; each incremental request moves it on by one.
        if (incremental) lock (session!) session.Epoch = session.Epoch == int.MaxValue ? 1 : session.Epoch + 1;
        return response;
    }

    private List<Target> TargetsFromRequest(FetchRequest request, short version, FetchSession? session)
    {
        var targets = new List<Target>();
        foreach (var t in request.Topics)
        {
            var (name, id, topic, topicError) = Resolve(t.Topic, t.TopicId, version);
            foreach (var p in t.Partitions)
            {
                FetchSessionPartition? cached = null;
                if (session is not null && name is not null)
                {
                    cached = new FetchSessionPartition(name, id, p.Partition) { FetchOffset = p.FetchOffset, MaxBytes = p.PartitionMaxBytes };
                    session.Partitions[(name, p.Partition)] = cached;
                }
                targets.Add(MakeTarget(name ?? t.Topic, id, p.Partition, p.FetchOffset, p.PartitionMaxBytes, cached, topic, topicError));
            }
        }
        return targets;
    }

    /// <summary>Applies an incremental request to its session and returns every partition the session covers.</summary>
    private List<Target> UpdateSession(FetchSession session, FetchRequest request, short version)
    {
        foreach (var forgotten in request.ForgottenTopicsData)
        {
            var name = version >= 13 ? FindName(session, forgotten.TopicId) : forgotten.Topic;
            if (name is null) continue;
            foreach (var p in forgotten.Partitions) session.Partitions.Remove((name, p));
        }
        var unresolved = new List<Target>();
        foreach (var t in request.Topics)
        {
            var (name, id, topic, topicError) = Resolve(t.Topic, t.TopicId, version);
            foreach (var p in t.Partitions)
            {
                if (name is null)
                {
                    unresolved.Add(MakeTarget(t.Topic, id, p.Partition, p.FetchOffset, p.PartitionMaxBytes, null, topic, topicError));
                    continue;
                }
                if (!session.Partitions.TryGetValue((name, p.Partition), out var cached))
                {
                    cached = new FetchSessionPartition(name, id, p.Partition);
                    session.Partitions[(name, p.Partition)] = cached;
                }
                cached.FetchOffset = p.FetchOffset;
                cached.MaxBytes = p.PartitionMaxBytes;
            }
        }
        var targets = new List<Target>(session.Partitions.Count + unresolved.Count);
        foreach (var cached in session.Partitions.Values)
        {
            var (_, _, topic, topicError) = Resolve(cached.Topic, cached.TopicId, 0);
            targets.Add(MakeTarget(cached.Topic, cached.TopicId, cached.Partition, cached.FetchOffset, cached.MaxBytes, cached, topic, topicError));
        }
        targets.AddRange(unresolved);
        return targets;
    }

    private static string? FindName(FetchSession session, Guid topicId)
    {
        foreach (var p in session.Partitions.Values) if (p.TopicId == topicId) return p.Topic;
        return null;
    }

    private (string? Name, Guid Id, ITopic? Topic, ErrorCode Error) Resolve(string name, Guid id, short version)
    {
        if (version >= 13)
        {
            return topics.TryGetTopic(id, out var byId)
                ? (byId.Name, byId.Id, byId, ErrorCode.None)
                : (null, id, null, ErrorCode.UnknownTopicId);
        }
        return topics.TryGetTopic(name, out var topic)
            ? (topic.Name, topic.Id, topic, ErrorCode.None)
            : (name, Guid.Empty, null, ErrorCode.UnknownTopicOrPartition);
    }

    private static Target MakeTarget(string name, Guid id, int partition, long offset, int maxBytes, FetchSessionPartition? cached, ITopic? topic, ErrorCode topicError)
    {
        if (topic is null) return new Target(name, id, partition, offset, maxBytes, cached) { Error = topicError };
        return topic.TryGetPartition(partition, out var log)
            ? new Target(name, id, partition, offset, maxBytes, cached) { Log = log }
            : new Target(name, id, partition, offset, maxBytes, cached) { Error = ErrorCode.UnknownTopicOrPartition };
    }

    /// <summary>
    /// Reads every target within the response and partition limits. As in Kafka (KIP-74), the first batch of
    /// the first partition with data is returned whole even when it exceeds a limit, so consumers always progress.
    /// </summary>
    private static (long Bytes, bool AnyError) ReadAll(List<Target> targets, PartitionData[] results, FetchRequest request)
    {
        long total = 0;
        bool anyError = false;
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            var data = new PartitionData
            {
                PartitionIndex = t.Partition,
                Records = RecordsPayload.Empty,
                AbortedTransactions = request.IsolationLevel == ReadCommitted ? [] : null,
            };
            results[i] = data;
            if (t.Log is null)
            {
                data.ErrorCode = (short)t.Error;
                data.HighWatermark = data.LastStableOffset = data.LogStartOffset = -1;
                anyError = true;
                continue;
            }
            long responseRemaining = request.MaxBytes - total;
            int limit = (int)Math.Min(t.MaxBytes, Math.Max(0, responseRemaining));
            if (limit <= 0 && total > 0)
            {
                (data.HighWatermark, data.LogStartOffset) = (t.Log.HighWatermark, t.Log.LogStartOffset);
                data.LastStableOffset = data.HighWatermark;
                continue;
            }
            var read = t.Log.Read(t.FetchOffset, Math.Max(limit, 1), minOneBatch: true);
            data.ErrorCode = (short)read.Error;
            data.HighWatermark = read.HighWatermark;
            data.LastStableOffset = read.LastStableOffset;
            data.LogStartOffset = read.LogStartOffset;
            if (read.Error != ErrorCode.None) { anyError = true; continue; }
            if (read.Records.Length > limit && total > 0) continue; // only the first non-empty partition may exceed
            data.Records = read.Records;
            total += read.Records.Length;
        }
        return (total, anyError);
    }

    /// <summary>
    /// Starts a wait that ends when any partition's high-water mark moves past what the last read saw (or its log
    /// closes); the caller adds the time limit. Waiters come from a small pool, so a wait allocates nothing beyond
    /// queuing its continuation.
    /// </summary>
    private static void WatchTargets(AppendWaiter waiter, List<Target> targets, PartitionData[] results)
    {
        waiter.Start();
        for (int i = 0; i < targets.Count; i++)
            if (targets[i].Log is { } log) waiter.Watch(log, results[i].HighWatermark);
    }

    // Enough for the fetches waiting at once on a busy broker; past it, waiters are made and dropped.
    private const int MaxPooledWaiters = 64;
    private readonly Stack<AppendWaiter> _waiters = new(MaxPooledWaiters);

    private AppendWaiter RentWaiter()
    {
        lock (_waiters) if (_waiters.TryPop(out var waiter)) return waiter;
        return new AppendWaiter();
    }

    private void ReturnWaiter(AppendWaiter waiter)
    {
        lock (_waiters)
        {
            if (_waiters.Count < MaxPooledWaiters) { _waiters.Push(waiter); return; }
        }
        waiter.Dispose();
    }

    private static void BuildResponse(FetchResponse response, List<Target> targets, PartitionData[] results, short version, bool incremental)
    {
        FetchResponse.FetchableTopicResponse? current = null;
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            var data = results[i];
            if (t.Cached is { } cached)
            {
                bool changed = data.Records!.Length > 0 || data.ErrorCode != 0 ||
                               cached.LastHighWatermark != data.HighWatermark || cached.LastLogStartOffset != data.LogStartOffset ||
                               cached.LastError != data.ErrorCode;
                cached.LastHighWatermark = data.HighWatermark;
                cached.LastLogStartOffset = data.LogStartOffset;
                cached.LastError = data.ErrorCode;
                if (incremental && !changed) continue;
            }
            bool sameTopic = current is not null && (version >= 13 ? current.TopicId == t.TopicId : current.Topic == t.Topic);
            if (!sameTopic)
            {
                current = new FetchResponse.FetchableTopicResponse { Topic = t.Topic, TopicId = t.TopicId };
                response.Responses.Add(current);
            }
            current!.Partitions.Add(data);
        }
    }
}
