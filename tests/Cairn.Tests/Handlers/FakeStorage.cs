using System.Diagnostics.CodeAnalysis;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Records;
using Cairn.Storage;

namespace Cairn.Tests.Handlers;

/// <summary>
/// A partition held in memory, with no files: the test sets its offsets and lookup answers, publishes batches to it,
/// or makes its appends fail. It records what the handlers ask of it, and wakes long polls on every publish.
/// </summary>
internal sealed class FakePartition(string topic, int partition) : IPartitionLog
{
    private readonly object _lock = new();
    private readonly List<(long BaseOffset, int Count, byte[] Bytes)> _batches = [];
    private readonly List<AppendWaiter> _waiters = [];
    private long _highWatermark;

    public string Topic => topic;
    public int Partition => partition;

    public long HighWatermark
    {
        get { lock (_lock) return _highWatermark; }
        set { lock (_lock) _highWatermark = value; }
    }

    public long LogStartOffset { get; set; }
    public long SizeInBytes { get; set; }
    public bool IsClosed => false;

    /// <summary>Set to take the partition offline, as recovery does when its files are inconsistent.</summary>
    public string? OfflineReason { get; set; }

    /// <summary>Thrown by every append while set, as a failing disk would.</summary>
    public Exception? AppendFailure { get; set; }

    /// <summary>What every append that does not fail answers.</summary>
    public AppendResult AppendAnswer { get; set; }

    public OffsetAndTimestamp MaxTimestamp { get; set; } = OffsetAndTimestamp.None;
    public Func<long, OffsetAndTimestamp> OffsetForTimestamp { get; set; } = _ => OffsetAndTimestamp.None;

    public List<(byte[] Records, bool AcksAll)> Appends { get; } = [];
    public List<(long FetchOffset, int MaxBytes, bool MinOneBatch)> Reads { get; } = [];
    public List<long> DeletedBefore { get; } = [];

    /// <summary>Completes when a long poll first waits on this partition.</summary>
    public TaskCompletionSource WaitedOn { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ValueTask<AppendResult> AppendAsync(Memory<byte> records, bool acksAll, CancellationToken cancellationToken)
    {
        if (AppendFailure is { } failure) throw failure;
        lock (_lock) Appends.Add((records.ToArray(), acksAll));
        return ValueTask.FromResult(AppendAnswer);
    }

    /// <summary>Adds a batch of <paramref name="count"/> records at the high-water mark, moves it on, and wakes the waiting polls.</summary>
    public void Publish(byte[] batch, int count)
    {
        lock (_lock)
        {
            _batches.Add((_highWatermark, count, batch));
            _highWatermark += count;
        }
        lock (_waiters)
            foreach (var waiter in _waiters) waiter.Wake();
    }

    public ReadResult Read(long fetchOffset, int maxBytes, bool minOneBatch)
    {
        lock (_lock)
        {
            Reads.Add((fetchOffset, maxBytes, minOneBatch));
            if (fetchOffset < LogStartOffset || fetchOffset > _highWatermark)
                return new ReadResult(ErrorCode.OffsetOutOfRange, RecordsPayload.Empty, _highWatermark, LogStartOffset);
            var bytes = new List<byte>();
            foreach (var (baseOffset, count, batch) in _batches)
            {
                if (baseOffset + count <= fetchOffset) continue;
                if (bytes.Count + batch.Length > maxBytes && (bytes.Count > 0 || !minOneBatch)) break;
                bytes.AddRange(batch);
            }
            return new ReadResult(ErrorCode.None, new MemoryRecords(bytes.ToArray()), _highWatermark, LogStartOffset);
        }
    }

    public OffsetAndTimestamp FindOffsetByTimestamp(long timestamp) => OffsetForTimestamp(timestamp);

    public OffsetAndTimestamp GetMaxTimestamp() => MaxTimestamp;

    public DeleteRecordsResult DeleteRecords(long beforeOffset)
    {
        lock (_lock)
        {
            DeletedBefore.Add(beforeOffset);
            if (beforeOffset < 0 || beforeOffset > _highWatermark) return new DeleteRecordsResult(ErrorCode.OffsetOutOfRange, LogStartOffset);
            LogStartOffset = Math.Max(LogStartOffset, beforeOffset);
            return new DeleteRecordsResult(ErrorCode.None, LogStartOffset);
        }
    }

    public void AddAppendWaiter(AppendWaiter waiter)
    {
        lock (_waiters) _waiters.Add(waiter);
        WaitedOn.TrySetResult();
    }

    public void RemoveAppendWaiter(AppendWaiter waiter)
    {
        lock (_waiters) _waiters.Remove(waiter);
    }
}

/// <summary>A topic of <see cref="FakePartition"/>s.</summary>
internal sealed class FakeTopic : ITopic
{
    private readonly FakePartition[] _partitions;

    public FakeTopic(string name, int partitions)
    {
        Name = name;
        _partitions = Enumerable.Range(0, partitions).Select(p => new FakePartition(name, p)).ToArray();
    }

    public string Name { get; }
    public Guid Id { get; } = Guid.NewGuid();
    public int PartitionCount => _partitions.Length;
    public LogConfig Config => LogConfig.Default;
    public IReadOnlyList<IPartitionLog> Partitions => _partitions;

    public FakePartition this[int partition] => _partitions[partition];

    public bool TryGetPartition(int partition, [NotNullWhen(true)] out IPartitionLog? log)
    {
        log = (uint)partition < (uint)_partitions.Length ? _partitions[partition] : null;
        return log is not null;
    }

    public IReadOnlyList<ConfigEntry> DescribeConfigs() => Config.Describe(null);
}

/// <summary>A fixed set of <see cref="FakeTopic"/>s: lookups only; these tests create, delete and alter nothing.</summary>
internal sealed class FakeTopicCatalog(params FakeTopic[] topics) : ITopicCatalog
{
    private readonly Dictionary<string, FakeTopic> _topics = topics.ToDictionary(t => t.Name);

    public int DefaultPartitions => 1;
    public IReadOnlyCollection<ITopic> Topics => _topics.Values;

    public bool TryGetTopic(string name, [NotNullWhen(true)] out ITopic? topic)
    {
        topic = _topics.GetValueOrDefault(name);
        return topic is not null;
    }

    public bool TryGetTopic(Guid topicId, [NotNullWhen(true)] out ITopic? topic)
    {
        topic = _topics.Values.FirstOrDefault(t => t.Id == topicId);
        return topic is not null;
    }

    public (ITopic? Topic, ErrorCode Error) GetOrAutoCreateTopic(string name, bool allowAutoCreate) =>
        TryGetTopic(name, out var topic) ? (topic, ErrorCode.None) : (null, ErrorCode.UnknownTopicOrPartition);

    public TopicChange CreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs) => throw Unused();
    public TopicChange ValidateCreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs) => throw Unused();
    public TopicChange DeleteTopic(string name) => throw Unused();
    public TopicChange AddPartitions(string name, int newTotal, bool validateOnly) => throw Unused();
    public TopicChange SetTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly) => throw Unused();
    public TopicChange AlterTopicConfig(string name, IEnumerable<ConfigAlteration> operations, bool validateOnly) => throw Unused();

    private static NotSupportedException Unused() => new("the fake catalogue only looks topics up");
}
