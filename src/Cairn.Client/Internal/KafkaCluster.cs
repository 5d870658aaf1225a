// Over 400 lines: connections, metadata cache and coordinator lookup share the retry/back-off policy and the cache
// every client type relies on; one file keeps that policy in one place.
using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Client.Internal;

internal sealed record PartitionMetadata(int Partition, ErrorCode Error, int Leader, int LeaderEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr, IReadOnlyList<int> OfflineReplicas);

internal sealed record TopicMetadata(string Name, Guid TopicId, bool IsInternal, ErrorCode Error, IReadOnlyList<PartitionMetadata> Partitions, long FetchedAt)
{
    public int PartitionCount => Partitions.Count;
}

internal readonly record struct BrokerEndpoint(int NodeId, string Host, int Port, string? Rack);

/// <summary>
/// What a producer, consumer or admin client shares: the bootstrap list, one connection per broker, the metadata
/// cache (topics, leaders, brokers, controller), group coordinators, version choice and retries.
/// </summary>
internal sealed class KafkaCluster : IAsyncDisposable
{
    /// <summary>Lowest versions this client can use: magic v2 record batches need Produce v3 and Fetch v4.</summary>
    private static readonly Dictionary<ApiKey, short> MinimumVersions = new() { [ApiKey.Produce] = 3, [ApiKey.Fetch] = 4 };

    private readonly IReadOnlyList<(string Host, int Port)> _bootstrap;
    private readonly ConcurrentDictionary<int, NodeSlot> _slots = new();
    private readonly ConcurrentDictionary<string, TopicMetadata> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Topic, bool AutoCreate), Task<TopicMetadata>> _topicRefreshes = new();
    private readonly ConcurrentDictionary<string, int> _coordinators = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _lifetime = new();
    private volatile IReadOnlyDictionary<int, BrokerEndpoint> _brokers = new Dictionary<int, BrokerEndpoint>();
    private int _disposed;

    public KafkaCluster(KafkaClientOptions options, string component)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _bootstrap = BootstrapParser.Parse(options.BootstrapServers);
        LoggerFactory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        Logger = LoggerFactory.CreateLogger("Cairn.Client." + component);
    }

    public KafkaClientOptions Options { get; }
    public ILoggerFactory LoggerFactory { get; }
    public ILogger Logger { get; }
    public CancellationToken Lifetime => _lifetime.Token;
    public string? ClusterId { get; private set; }
    public int ControllerId { get; private set; } = -1;
    public IReadOnlyDictionary<int, BrokerEndpoint> Brokers => _brokers;

    private static long Now => Stopwatch.GetTimestamp();
    private bool IsFresh(TopicMetadata t) => Stopwatch.GetElapsedTime(t.FetchedAt) < Options.MetadataMaxAge;

    // ---------------------------------------------------------------- retries

    public TimeSpan Backoff(int attempt)
    {
        double ms = Options.RetryBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16));
        return TimeSpan.FromMilliseconds(Math.Min(ms, Math.Max(1000, Options.RetryBackoff.TotalMilliseconds)));
    }

    /// <summary>Runs <paramref name="attempt"/>, trying again after retriable <see cref="KafkaException"/>s (up to <see cref="KafkaClientOptions.Retries"/>).</summary>
    public async Task<T> RetryAsync<T>(Func<int, Task<T>> attempt, CancellationToken cancellationToken)
    {
        for (int i = 0; ; i++)
        {
            try
            {
                return await attempt(i).ConfigureAwait(false);
            }
            catch (KafkaException e) when (e.IsRetriable && i < Options.Retries && !cancellationToken.IsCancellationRequested && !_lifetime.IsCancellationRequested)
            {
                await Task.Delay(Backoff(i), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // ---------------------------------------------------------------- connections

    private sealed class NodeSlot(int nodeId)
    {
        public int NodeId { get; } = nodeId;
        public BrokerConnection? Current;
        public Task<BrokerConnection>? Connecting;
    }

    private BrokerEndpoint ResolveEndpoint(int nodeId)
    {
        if (nodeId < 0)
        {
            int index = -nodeId - 1;
            if (index < _bootstrap.Count) return new BrokerEndpoint(nodeId, _bootstrap[index].Host, _bootstrap[index].Port, null);
        }
        else if (_brokers.TryGetValue(nodeId, out var endpoint)) return endpoint;
        throw new KafkaException(ErrorCode.BrokerNotAvailable, $"broker {nodeId} is not in the cluster metadata");
    }

    /// <summary>The open connection to <paramref name="nodeId"/>, opening (or reopening) it when needed.</summary>
    public async Task<BrokerConnection> GetConnectionAsync(int nodeId, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (nodeId >= 0 && !_brokers.ContainsKey(nodeId))
        {
            // A broker named before the metadata that lists it was read (a config resource, a coordinator): look first.
            await RefreshMetadataAsync([], false, cancellationToken).ConfigureAwait(false);
        }
        var slot = _slots.GetOrAdd(nodeId, id => new NodeSlot(id));
        Task<BrokerConnection> connecting;
        lock (slot)
        {
            if (slot.Current is { IsAlive: true } current) return current;
            if (slot.Connecting is null || slot.Connecting.IsCompleted)
            {
                var endpoint = ResolveEndpoint(nodeId);
                slot.Connecting = ConnectAsync(slot, endpoint);
            }
            connecting = slot.Connecting;
        }
        return await connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<BrokerConnection> ConnectAsync(NodeSlot slot, BrokerEndpoint endpoint)
    {
        var old = slot.Current;
        var connection = await BrokerConnection.ConnectAsync(slot.NodeId, endpoint.Host, endpoint.Port, Options.ClientId, Options.RequestTimeout,
            Options.MaxApiVersions, Logger, _lifetime.Token).ConfigureAwait(false);
        lock (slot) slot.Current = connection;
        if (old is not null) _ = old.DisposeAsync().AsTask();
        Logger.LogInformation("Connected to {Broker} at {EndPoint}", slot.NodeId < 0 ? "bootstrap server" : $"broker {slot.NodeId}", connection.EndPoint);
        if (Volatile.Read(ref _disposed) != 0) await connection.DisposeAsync().ConfigureAwait(false);
        return connection;
    }

    /// <summary>
    /// A connection to some broker: an open one (the least busy), else the known brokers and then the bootstrap
    /// servers in turn until one answers.
    /// </summary>
    public async Task<BrokerConnection> GetAnyConnectionAsync(CancellationToken cancellationToken)
    {
        BrokerConnection? best = null;
        foreach (var slot in _slots.Values)
        {
            var c = slot.Current;
            if (c is { IsAlive: true } && (slot.NodeId >= 0 ? _brokers.ContainsKey(slot.NodeId) : _brokers.Count == 0) && (best is null || c.InFlight < best.InFlight))
                best = c;
        }
        if (best is not null) return best;

        var candidates = _brokers.Keys.OrderBy(_ => Random.Shared.Next()).ToList();
        for (int i = 0; i < _bootstrap.Count; i++) candidates.Add(-i - 1);
        var errors = new List<KafkaException>();
        foreach (var nodeId in candidates)
        {
            try
            {
                return await GetConnectionAsync(nodeId, cancellationToken).ConfigureAwait(false);
            }
            catch (KafkaException e) when (e.IsRetriable)
            {
                errors.Add(e);
            }
        }
        // Keep the cause's code when every broker failed the same way (all timed out, say).
        var code = errors.Count > 0 && errors.All(e => e.Error == errors[0].Error) ? errors[0].Error : ErrorCode.NetworkException;
        // One address tried: its own error says it all ("cannot connect to HOST:PORT: connection refused").
        if (errors.Count == 1) throw new KafkaException(code, errors[0].Message, errors[0]);
        throw new KafkaException(code, "no broker is reachable: " + string.Join("; ", errors.Select(e => e.Message)), errors.FirstOrDefault());
    }

    // ---------------------------------------------------------------- requests

    /// <summary>The version of <paramref name="apiKey"/> to use on <paramref name="connection"/>, or an UNSUPPORTED_VERSION error.</summary>
    public short ChooseVersion(BrokerConnection connection, ApiKey apiKey, short? maxVersion = null)
    {
        short version = connection.GetVersion(apiKey);
        if (maxVersion is { } max && version > max) version = max;
        short min = MinimumVersions.GetValueOrDefault(apiKey);
        var brokerRange = connection.BrokerVersions.TryGetValue(apiKey, out var r) ? r : VersionRange.None;
        if (version < min || (!brokerRange.IsEmpty && version < brokerRange.Min) || version < 0)
        {
            var declared = MessageCatalog.Request(apiKey)?.Versions ?? VersionRange.None;
            throw new KafkaException(ErrorCode.UnsupportedVersion,
                $"broker {connection.NodeId} at {connection.EndPoint} does not support {apiKey} in a version this client speaks " +
                $"(broker: {(brokerRange.IsEmpty ? "not supported" : brokerRange.ToString())}; client: {declared}{(min > 0 ? $", at least {min}" : "")})");
        }
        return version;
    }

    public bool Supports(BrokerConnection connection, ApiKey apiKey) => connection.GetVersion(apiKey) >= MinimumVersions.GetValueOrDefault(apiKey);

    /// <summary>Sends one request on <paramref name="connection"/>; <paramref name="build"/> makes it for the chosen version.</summary>
    public async Task<(TResponse Response, short Version)> SendAsync<TRequest, TResponse>(BrokerConnection connection, Func<short, TRequest> build,
        CancellationToken cancellationToken, TimeSpan? extraTimeout = null, short? maxVersion = null)
        where TRequest : class, new() where TResponse : class, new()
    {
        var apiKey = MessageCatalog.Of<TRequest>().ApiKey;
        short version = ChooseVersion(connection, apiKey, maxVersion);
        var request = build(version);
        var frame = await connection.SendAsync(apiKey, version, w => MessageSerializer.Write(w, request, version),
            Options.RequestTimeout + (extraTimeout ?? TimeSpan.Zero), cancellationToken).ConfigureAwait(false);
        try
        {
            return (frame.Read<TResponse>(), version);
        }
        catch (Exception e) when (e is MalformedMessageException or ArgumentException or InvalidOperationException)
        {
            throw new KafkaException(ErrorCode.UnknownServerError, $"cannot decode the {apiKey} v{version} response from {connection.EndPoint}: {e.Message}", e);
        }
    }

    public async Task<(TResponse Response, short Version)> SendAsync<TRequest, TResponse>(int nodeId, Func<short, TRequest> build,
        CancellationToken cancellationToken, TimeSpan? extraTimeout = null, short? maxVersion = null)
        where TRequest : class, new() where TResponse : class, new()
    {
        var connection = await GetConnectionAsync(nodeId, cancellationToken).ConfigureAwait(false);
        return await SendAsync<TRequest, TResponse>(connection, build, cancellationToken, extraTimeout, maxVersion).ConfigureAwait(false);
    }

    public async Task<(TResponse Response, short Version)> SendToAnyAsync<TRequest, TResponse>(Func<short, TRequest> build, CancellationToken cancellationToken)
        where TRequest : class, new() where TResponse : class, new()
    {
        var connection = await GetAnyConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await SendAsync<TRequest, TResponse>(connection, build, cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- metadata

    /// <summary>
    /// Asks a broker for metadata: of <paramref name="topics"/>, or of every topic when null. Updates the broker list,
    /// the controller and the cached topics, and returns the response.
    /// </summary>
    public async Task<MetadataResponse> RefreshMetadataAsync(IReadOnlyCollection<string>? topics, bool allowAutoCreate, CancellationToken cancellationToken)
    {
        var (response, version) = await SendToAnyAsync<MetadataRequest, MetadataResponse>(v => new MetadataRequest
        {
            // v0 has no null list: an empty one means every topic there.
            Topics = topics is null ? (v == 0 ? [] : null) : topics.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t }).ToList(),
            AllowAutoTopicCreation = allowAutoCreate,
        }, cancellationToken).ConfigureAwait(false);
        Apply(response, version);
        return response;
    }

    private void Apply(MetadataResponse response, short version)
    {
        var brokers = new Dictionary<int, BrokerEndpoint>();
        foreach (var b in response.Brokers) brokers[b.NodeId] = new BrokerEndpoint(b.NodeId, b.Host, b.Port, b.Rack);
        if (brokers.Count > 0)
        {
            var before = _brokers;
            _brokers = brokers;
            if (before.Count != brokers.Count || brokers.Any(b => !before.TryGetValue(b.Key, out var old) || old != b.Value))
                Logger.LogInformation("Cluster {ClusterId}: brokers {Brokers}", response.ClusterId, string.Join(", ", brokers.Values.Select(b => $"{b.NodeId}={b.Host}:{b.Port}")));
            AdoptBootstrapConnections(brokers);
        }
        if (version >= 1) ControllerId = response.ControllerId;
        if (version >= 2) ClusterId = response.ClusterId;
        long now = Now;
        foreach (var t in response.Topics)
        {
            if (t.Name is null) continue;
            var partitions = t.Partitions
                .Select(p => new PartitionMetadata(p.PartitionIndex, (ErrorCode)p.ErrorCode, p.LeaderId, p.LeaderEpoch, p.ReplicaNodes, p.IsrNodes, p.OfflineReplicas))
                .OrderBy(p => p.Partition)
                .ToArray();
            var error = (ErrorCode)t.ErrorCode;
            if (error == ErrorCode.None || !_topics.TryGetValue(t.Name, out var previous) || previous.Error != ErrorCode.None)
                _topics[t.Name] = new TopicMetadata(t.Name, t.TopicId, t.IsInternal, error, partitions, now);
            else
                _topics.TryRemove(t.Name, out _); // a topic that was known and now errors (deleted?) is looked up afresh next time
        }
        Logger.LogDebug("Metadata refreshed: {Brokers} brokers, {Topics} topics", response.Brokers.Count, response.Topics.Count);
    }

    /// <summary>A bootstrap connection whose address is a broker's becomes that broker's connection (no second socket).</summary>
    private void AdoptBootstrapConnections(Dictionary<int, BrokerEndpoint> brokers)
    {
        foreach (var (id, slot) in _slots)
        {
            if (id >= 0 || slot.Current is not { IsAlive: true } connection) continue;
            foreach (var b in brokers.Values)
            {
                if (!string.Equals(b.Host, connection.Host, StringComparison.OrdinalIgnoreCase) || b.Port != connection.Port) continue;
                var target = _slots.GetOrAdd(b.NodeId, nid => new NodeSlot(nid));
                lock (target)
                {
                    if (target.Current is { IsAlive: true } || target.Connecting is { IsCompleted: false }) break;
                    target.Current = connection;
                }
                break;
            }
        }
    }

    /// <summary>The cached metadata of <paramref name="topic"/>, fresh or not; null when unknown.</summary>
    public TopicMetadata? TryGetCachedTopic(string topic) => _topics.TryGetValue(topic, out var t) && t.Error == ErrorCode.None ? t : null;

    /// <summary>Topics with cached metadata.</summary>
    public IEnumerable<TopicMetadata> CachedTopics => _topics.Values;

    public void InvalidateTopic(string topic)
    {
        if (_topics.TryGetValue(topic, out var t)) _topics.TryUpdate(topic, t with { FetchedAt = 0 }, t);
    }

    /// <summary>
    /// The metadata of <paramref name="topic"/>: from the cache when fresh, else asked for (concurrent callers share
    /// one request). Unknown topics, topics without partitions and topics none of whose partitions has a leader are
    /// asked about again a few times, then fail. Some leaderless (offline) partitions leave the metadata valid, as in
    /// the Java client: the other partitions stay usable, and <see cref="GetLeaderAsync"/> waits for the missing leaders.
    /// </summary>
    public ValueTask<TopicMetadata> GetTopicAsync(string topic, bool allowAutoCreate, CancellationToken cancellationToken)
    {
        if (_topics.TryGetValue(topic, out var cached) && cached.Error == ErrorCode.None && IsFresh(cached))
            return ValueTask.FromResult(cached);
        return new ValueTask<TopicMetadata>(RefreshTopicShared(topic, allowAutoCreate).WaitAsync(cancellationToken));
    }

    private Task<TopicMetadata> RefreshTopicShared(string topic, bool allowAutoCreate)
    {
        var key = (topic, allowAutoCreate);
        while (true)
        {
            if (_topicRefreshes.TryGetValue(key, out var running)) return running;
            var tcs = new TaskCompletionSource<TopicMetadata>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_topicRefreshes.TryAdd(key, tcs.Task)) continue;
            _ = Task.Run(async () =>
            {
                try { tcs.TrySetResult(await RefreshTopicAsync(topic, allowAutoCreate).ConfigureAwait(false)); }
                catch (OperationCanceledException) when (_lifetime.IsCancellationRequested) { tcs.TrySetException(new ObjectDisposedException(nameof(KafkaCluster))); }
                catch (Exception e) { tcs.TrySetException(e); }
                finally { _topicRefreshes.TryRemove(new KeyValuePair<(string, bool), Task<TopicMetadata>>(key, tcs.Task)); }
            });
            return tcs.Task;
        }
    }

    private Task<TopicMetadata> RefreshTopicAsync(string topic, bool allowAutoCreate) => RetryAsync(async _ =>
    {
        var response = await RefreshMetadataAsync([topic], allowAutoCreate, _lifetime.Token).ConfigureAwait(false);
        var t = response.Topics.FirstOrDefault(x => x.Name == topic);
        if (t is null) throw new KafkaException(ErrorCode.UnknownTopicOrPartition, $"topic '{topic}' is missing from the metadata response");
        if (t.ErrorCode != 0) throw KafkaException.FromCode((ErrorCode)t.ErrorCode, $"metadata for topic '{topic}'");
        var metadata = _topics[topic];
        if (metadata.Partitions.Count == 0) throw new KafkaException(ErrorCode.LeaderNotAvailable, $"topic '{topic}' has no partitions yet");
        if (metadata.Partitions.All(p => p.Leader < 0))
            throw new KafkaException(ErrorCode.LeaderNotAvailable, $"no partition of topic '{topic}' has a leader" +
                (metadata.Partitions[0].Error != ErrorCode.None ? $" ({KafkaErrors.Describe(metadata.Partitions[0].Error)})" : ""));
        return metadata;
    }, _lifetime.Token);

    /// <summary>The cached leader of a partition; false when unknown, leaderless or stale (<paramref name="stale"/> says which).</summary>
    public bool TryGetLeader(TopicPartition tp, out int leader, out bool stale)
    {
        leader = -1;
        stale = true;
        if (!_topics.TryGetValue(tp.Topic, out var t) || t.Error != ErrorCode.None) return false;
        stale = !IsFresh(t);
        if ((uint)tp.Partition >= (uint)t.Partitions.Count) return false;
        leader = t.Partitions[tp.Partition].Partition == tp.Partition
            ? t.Partitions[tp.Partition].Leader
            : t.Partitions.FirstOrDefault(p => p.Partition == tp.Partition)?.Leader ?? -1;
        return leader >= 0 && !stale;
    }

    /// <summary>
    /// The leader of a partition, refreshing metadata when needed. A partition without a leader (offline, or electing)
    /// has its metadata asked for again with back-off up to <see cref="KafkaClientOptions.Retries"/> times, then fails
    /// with LEADER_NOT_AVAILABLE naming it; only callers of that partition wait.
    /// </summary>
    public async ValueTask<int> GetLeaderAsync(TopicPartition tp, bool allowAutoCreate, CancellationToken cancellationToken)
    {
        if (TryGetLeader(tp, out int leader, out _)) return leader;
        var topic = await GetTopicAsync(tp.Topic, allowAutoCreate, cancellationToken).ConfigureAwait(false);
        var partition = topic.Partitions.FirstOrDefault(p => p.Partition == tp.Partition);
        if (partition is null)
        {
            // Maybe partitions were just added: look once more before giving up.
            InvalidateTopic(tp.Topic);
            topic = await GetTopicAsync(tp.Topic, allowAutoCreate, cancellationToken).ConfigureAwait(false);
            partition = topic.Partitions.FirstOrDefault(p => p.Partition == tp.Partition)
                ?? throw new KafkaException(ErrorCode.UnknownTopicOrPartition, $"partition {tp} does not exist (the topic has {topic.PartitionCount} partitions)", null, tp);
        }
        for (int attempt = 0; partition.Leader < 0; attempt++)
        {
            if (attempt >= Options.Retries)
                throw new KafkaException(ErrorCode.LeaderNotAvailable, $"partition {tp} has no leader" +
                    (partition.Error != ErrorCode.None ? $" ({KafkaErrors.Describe(partition.Error)})" : "") +
                    (partition.OfflineReplicas.Count > 0 ? $"; offline replicas: {string.Join(",", partition.OfflineReplicas)}" : ""), null, tp);
            await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
            InvalidateTopic(tp.Topic);
            topic = await GetTopicAsync(tp.Topic, allowAutoCreate, cancellationToken).ConfigureAwait(false);
            partition = topic.Partitions.FirstOrDefault(p => p.Partition == tp.Partition) ?? partition;
        }
        return partition.Leader;
    }

    /// <summary>Whether the cached metadata says <paramref name="tp"/> exists but has no leader (an offline partition).</summary>
    public bool IsKnownLeaderless(TopicPartition tp) =>
        TryGetCachedTopic(tp.Topic) is { } t && t.Partitions.FirstOrDefault(p => p.Partition == tp.Partition) is { Leader: < 0 };

    /// <summary>Groups partitions by their leader.</summary>
    public async Task<Dictionary<int, List<TopicPartition>>> GroupByLeaderAsync(IEnumerable<TopicPartition> partitions, CancellationToken cancellationToken)
    {
        var result = new Dictionary<int, List<TopicPartition>>();
        foreach (var tp in partitions)
        {
            int leader = await GetLeaderAsync(tp, allowAutoCreate: false, cancellationToken).ConfigureAwait(false);
            if (!result.TryGetValue(leader, out var list)) result[leader] = list = [];
            list.Add(tp);
        }
        return result;
    }

    /// <summary>The controller (for topic creation and deletion), from metadata.</summary>
    public async Task<int> GetControllerAsync(CancellationToken cancellationToken)
    {
        if (ControllerId < 0 || !_brokers.ContainsKey(ControllerId)) await RefreshMetadataAsync([], false, cancellationToken).ConfigureAwait(false);
        if (ControllerId >= 0 && _brokers.ContainsKey(ControllerId)) return ControllerId;
        // Old brokers (Metadata v0) name no controller: any broker will do.
        return _brokers.Count > 0 ? _brokers.Keys.First() : throw new KafkaException(ErrorCode.NotController, "the cluster has no controller");
    }

    // ---------------------------------------------------------------- coordinators

    /// <summary>The broker coordinating <paramref name="groupId"/> (FindCoordinator, cached until invalidated).</summary>
    public async Task<int> FindCoordinatorAsync(string groupId, CancellationToken cancellationToken)
    {
        if (_coordinators.TryGetValue(groupId, out var cached) && _brokers.ContainsKey(cached)) return cached;
        return await RetryAsync(async _ =>
        {
            var (response, version) = await SendToAnyAsync<FindCoordinatorRequest, FindCoordinatorResponse>(v => new FindCoordinatorRequest
            {
                Key = groupId, KeyType = 0, CoordinatorKeys = [groupId],
            }, cancellationToken).ConfigureAwait(false);
            ErrorCode error;
            string? message;
            int nodeId, port;
            string host;
            if (version >= 4)
            {
                var c = response.Coordinators.FirstOrDefault(x => x.Key == groupId) ?? response.Coordinators.FirstOrDefault()
                    ?? throw new KafkaException(ErrorCode.CoordinatorNotAvailable, $"FindCoordinator for group '{groupId}' returned no coordinator");
                (error, message, nodeId, host, port) = ((ErrorCode)c.ErrorCode, c.ErrorMessage, c.NodeId, c.Host, c.Port);
            }
            else
            {
                (error, message, nodeId, host, port) = ((ErrorCode)response.ErrorCode, response.ErrorMessage, response.NodeId, response.Host, response.Port);
            }
            if (error != ErrorCode.None) throw KafkaException.FromCode(error, $"finding the coordinator of group '{groupId}'", message);
            if (!_brokers.TryGetValue(nodeId, out var known) || known.Host != host || known.Port != port)
            {
                var brokers = new Dictionary<int, BrokerEndpoint>(_brokers) { [nodeId] = new BrokerEndpoint(nodeId, host, port, known.Rack) };
                _brokers = brokers;
            }
            _coordinators[groupId] = nodeId;
            return nodeId;
        }, cancellationToken).ConfigureAwait(false);
    }

    public void InvalidateCoordinator(string groupId) => _coordinators.TryRemove(groupId, out _);

    /// <summary>Sends a request to a group's coordinator, looking the coordinator up again (and retrying) when it moved.</summary>
    public Task<(TResponse Response, short Version)> SendToCoordinatorAsync<TRequest, TResponse>(string groupId, Func<short, TRequest> build,
        Func<TResponse, short, ErrorCode> coordinatorError, CancellationToken cancellationToken)
        where TRequest : class, new() where TResponse : class, new()
        => RetryAsync(async _ =>
        {
            int coordinator = await FindCoordinatorAsync(groupId, cancellationToken).ConfigureAwait(false);
            try
            {
                var result = await SendAsync<TRequest, TResponse>(coordinator, build, cancellationToken).ConfigureAwait(false);
                var error = coordinatorError(result.Response, result.Version);
                if (error is ErrorCode.NotCoordinator or ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress)
                {
                    if (error != ErrorCode.CoordinatorLoadInProgress) InvalidateCoordinator(groupId);
                    throw KafkaException.FromCode(error, $"{MessageCatalog.Of<TRequest>().ApiKey} for group '{groupId}'");
                }
                return result;
            }
            catch (KafkaException e) when (KafkaErrors.InvalidatesCoordinator(e.Error))
            {
                InvalidateCoordinator(groupId);
                throw;
            }
        }, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _lifetime.Cancel();
        var closing = new List<Task>();
        var seen = new HashSet<BrokerConnection>();
        foreach (var slot in _slots.Values)
        {
            BrokerConnection? c;
            lock (slot) c = slot.Current;
            if (c is not null && seen.Add(c)) closing.Add(c.DisposeAsync().AsTask());
        }
        try { await Task.WhenAll(closing).ConfigureAwait(false); } catch (Exception) { }
    }
}
