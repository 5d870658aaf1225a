namespace Cairn.Broker.Handlers;

/// <summary>A partition as a fetch session tracks it (KIP-227).</summary>
internal sealed class FetchSessionPartition(string topic, Guid topicId, int partition)
{
    public string Topic { get; } = topic;
    public Guid TopicId { get; } = topicId;
    public int Partition { get; } = partition;
    public long FetchOffset { get; set; }
    public int MaxBytes { get; set; }
    // What the client last saw, so an incremental response can leave out partitions that did not change.
    public long LastHighWatermark { get; set; } = -1;
    public long LastLogStartOffset { get; set; } = -1;
    public short LastError { get; set; } = -1;
}

internal sealed class FetchSession(int id)
{
    public int Id { get; } = id;
    public int Epoch { get; set; } = 1;
    public long LastUsedTicks { get; set; } = Environment.TickCount64;
    /// <summary>Partitions in the order the client first sent them (responses keep that order).</summary>
    public Dictionary<(string Topic, int Partition), FetchSessionPartition> Partitions { get; } = new();
}

/// <summary>
/// Incremental fetch sessions: epoch -1 means no session, 0 opens a new one (full request), higher epochs
/// must match the session's next epoch. Least recently used sessions are evicted past the limit.
/// </summary>
internal sealed class FetchSessionCache(int maxSessions = 1000)
{
    public const int InitialEpoch = 0;
    public const int FinalEpoch = -1;

    private readonly Dictionary<int, FetchSession> _sessions = new();
    private readonly object _lock = new();

    public FetchSession Create()
    {
        lock (_lock)
        {
            if (_sessions.Count >= maxSessions)
            {
                var oldest = _sessions.Values.MinBy(s => s.LastUsedTicks)!;
                _sessions.Remove(oldest.Id);
            }
            int id;
            do id = Random.Shared.Next(1, int.MaxValue); while (_sessions.ContainsKey(id));
            var session = new FetchSession(id);
            _sessions[id] = session;
            return session;
        }
    }

    public FetchSession? Get(int id)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(id, out var s)) return null;
            s.LastUsedTicks = Environment.TickCount64;
            return s;
        }
    }

    public void Remove(int id)
    {
        lock (_lock) _sessions.Remove(id);
    }

    public int Count { get { lock (_lock) return _sessions.Count; } }
}
