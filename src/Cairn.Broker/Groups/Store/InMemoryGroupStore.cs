using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Broker.Groups.Store;

/// <summary>
/// The "database" behind <see cref="InMemoryGroupStore"/>: share one between several stores to model several
/// brokers (cluster ids) on one database, or a broker restart (dispose the store, open a new one on it).
/// </summary>
internal sealed class InMemoryGroupDatabase
{
    internal readonly object Lock = new();
    internal readonly Dictionary<(string Cluster, string Group), Dictionary<(Guid TopicId, int Partition), CommittedOffset>> Offsets = new();
    internal readonly Dictionary<(string Cluster, string Group), StoredGroup> Groups = new();

    /// <summary>Schema version the database claims; a store refuses one newer than <see cref="InMemoryGroupStore.SchemaVersion"/>.</summary>
    public int SchemaVersion { get; set; }
}

/// <summary>Non-durable <see cref="IGroupStore"/> for tests. Values are copied in and out, and times are cut to milliseconds like the durable stores do.</summary>
internal sealed class InMemoryGroupStore : IGroupStore
{
    public const int SchemaVersion = 1;

    private readonly string _clusterId;
    private readonly InMemoryGroupDatabase _db;
    private readonly ILogger _logger;
    private volatile bool _initialized;
    private volatile bool _disposed;

    public InMemoryGroupStore(string clusterId, InMemoryGroupDatabase? database = null, ILogger? logger = null)
    {
        GroupStoreValidation.ClusterId(clusterId);
        _clusterId = clusterId;
        _db = database ?? new InMemoryGroupDatabase();
        _logger = logger ?? NullLogger.Instance;
    }

    public string ClusterId => _clusterId;

    public InMemoryGroupDatabase Database => _db;

    public Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        lock (_db.Lock)
        {
            if (_db.SchemaVersion > SchemaVersion)
                throw GroupStoreSchema.Newer("in-memory", "(memory)", _db.SchemaVersion, SchemaVersion);
            if (_db.SchemaVersion < SchemaVersion)
            {
                _logger.LogDebug("In-memory group store schema set to version {Version}", SchemaVersion);
                _db.SchemaVersion = SchemaVersion;
            }
        }
        _initialized = true;
        return Task.CompletedTask;
    }

    public Task CommitOffsetsAsync(IReadOnlyList<GroupOffsetCommit> commits, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Commits(commits);
        ThrowIfNotReady();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_db.Lock)
        {
            foreach (var commit in commits)
            {
                var key = (_clusterId, commit.GroupId);
                if (!_db.Offsets.TryGetValue(key, out var partitions))
                    _db.Offsets[key] = partitions = new Dictionary<(Guid, int), CommittedOffset>();
                foreach (var o in commit.Offsets)
                    partitions[(o.TopicId, o.Partition)] = Normalize(o);
            }
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>> GetAllOffsetsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        var result = new Dictionary<string, IReadOnlyList<CommittedOffset>>(StringComparer.Ordinal);
        lock (_db.Lock)
        {
            foreach (var ((cluster, group), partitions) in _db.Offsets)
            {
                if (cluster == _clusterId && partitions.Count > 0) result[group] = Sorted(partitions.Values);
            }
        }
        return Task.FromResult<IReadOnlyDictionary<string, IReadOnlyList<CommittedOffset>>>(result);
    }

    public Task DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        GroupStoreValidation.Partitions(partitions);
        ThrowIfNotReady();
        lock (_db.Lock)
        {
            if (_db.Offsets.TryGetValue((_clusterId, groupId), out var stored))
            {
                foreach (var (topic, partition) in partitions)
                {
                    foreach (var key in stored.Where(kv => kv.Value.Topic == topic && kv.Key.Partition == partition).Select(kv => kv.Key).ToList())
                        stored.Remove(key);
                }
                if (stored.Count == 0) _db.Offsets.Remove((_clusterId, groupId));
            }
        }
        return Task.CompletedTask;
    }

    public Task DeleteTopicOffsetsAsync(string topic, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Topic(topic);
        ThrowIfNotReady();
        lock (_db.Lock)
        {
            foreach (var (key, stored) in _db.Offsets.Where(kv => kv.Key.Cluster == _clusterId).ToList())
            {
                foreach (var k in stored.Where(kv => kv.Value.Topic == topic).Select(kv => kv.Key).ToList())
                    stored.Remove(k);
                if (stored.Count == 0) _db.Offsets.Remove(key);
            }
        }
        return Task.CompletedTask;
    }

    public Task SaveGroupAsync(StoredGroup group, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.Group(group);
        ThrowIfNotReady();
        var copy = Copy(group);
        lock (_db.Lock) _db.Groups[(_clusterId, group.GroupId)] = copy;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<StoredGroup>> GetGroupsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotReady();
        List<StoredGroup> groups;
        lock (_db.Lock) groups = _db.Groups.Where(kv => kv.Key.Cluster == _clusterId).Select(kv => kv.Value).ToList();
        groups.Sort((a, b) => string.CompareOrdinal(a.GroupId, b.GroupId));
        return Task.FromResult<IReadOnlyList<StoredGroup>>(groups.Select(Copy).ToList());
    }

    public Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        GroupStoreValidation.GroupId(groupId);
        ThrowIfNotReady();
        lock (_db.Lock)
        {
            _db.Groups.Remove((_clusterId, groupId));
            _db.Offsets.Remove((_clusterId, groupId));
        }
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return ValueTask.CompletedTask;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void ThrowIfNotReady()
    {
        ThrowIfDisposed();
        if (!_initialized) throw new InvalidOperationException("call InitializeAsync before using the group store");
    }

    private static CommittedOffset Normalize(CommittedOffset o) =>
        o with { CommitTime = GroupStoreSchema.FromUnixMs(GroupStoreSchema.ToUnixMs(o.CommitTime)) };

    private static IReadOnlyList<CommittedOffset> Sorted(IEnumerable<CommittedOffset> offsets) =>
        offsets.OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition).ThenBy(o => o.TopicId).ToList();

    private static StoredGroup Copy(StoredGroup g) => g with
    {
        EmptySince = g.EmptySince is { } t ? GroupStoreSchema.FromUnixMs(GroupStoreSchema.ToUnixMs(t)) : null,
        Members = g.Members.Select(m => m with
        {
            Protocols = m.Protocols.Select(p => p with { Metadata = (byte[])p.Metadata.Clone() }).ToArray(),
            Assignment = (byte[])m.Assignment.Clone(),
        }).ToArray(),
    };
}
