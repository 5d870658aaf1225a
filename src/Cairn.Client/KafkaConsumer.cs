// Over 400 lines: assignment, positions, fetches and their error/back-off handling share one lock and one state per
// partition; keeping them together keeps those invariants in one place.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Cairn.Client.Internal;
using Cairn.Offsets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;

namespace Cairn.Client;

/// <summary>
/// Reads records from explicitly assigned partitions (no group membership). Each broker gets one long-polling fetch
/// at a time for the assigned partitions it leads; records are handed out in offset order per partition.
/// </summary>
/// <remarks>
/// One caller at a time: <see cref="ConsumeAsync(CancellationToken)"/> must not run concurrently with itself.
/// <see cref="Assign"/>, <see cref="SeekAsync"/> and <see cref="Position"/> may be called between (or during) consumes.
/// </remarks>
public sealed class KafkaConsumer : IAsyncDisposable
{
    private sealed class PartitionState(TopicPartition topicPartition)
    {
        public TopicPartition TopicPartition { get; } = topicPartition;
        /// <summary>The offset of the next record to hand out; -1 when unknown.</summary>
        public long Position = -1;
        /// <summary>Bumped by every seek, so the answer to a fetch sent before it is ignored.</summary>
        public int Generation;
        public Queue<ConsumeResult> Buffer { get; } = new();
        /// <summary>Where the next fetch starts once the buffer is drained (after the last batch fetched).</summary>
        public long BufferEnd = -1;
        public long HighWatermark = -1, LastStableOffset = -1, LogStartOffset = -1;
        /// <summary>A fetch answer arrived since the last seek, so the watermarks describe the log around the position.</summary>
        public bool HasWatermarks;
        public bool EofReported;
        public long InFlightFetch;
        public long RetryAt;
        public int ConsecutiveErrors;
        /// <summary>Metadata lookups in a row that found the partition without a leader (sets the back-off).</summary>
        public int LeaderlessLookups;
        public bool NeedsReset;
        public Exception? Error;
    }

    private sealed record Requested(PartitionState State, int Generation, long Offset);

    private sealed record FetchOutcome(long Id, int Node, Dictionary<TopicPartition, Requested> Partitions, FetchResponse? Response, short Version,
        Dictionary<Guid, string> TopicNames, KafkaException? Error);

    private readonly KafkaCluster _cluster;
    private readonly ConsumerOptions _options;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly Dictionary<TopicPartition, PartitionState> _states = [];
    private readonly List<PartitionState> _order = [];
    private readonly Dictionary<int, Task<FetchOutcome>> _fetches = [];
    private readonly Dictionary<string, Task> _metadataLookups = new(StringComparer.Ordinal);
    private int _cursor;
    private long _nextFetchId;
    /// <summary>Completed when the assignment or a position changes, so a waiting consume looks again.</summary>
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _consuming;
    private int _disposed;

    public KafkaConsumer(KafkaClientOptions clientOptions, ConsumerOptions? options = null)
    {
        options ??= new ConsumerOptions();
        options.Validate();
        _options = options;
        _cluster = new KafkaCluster(clientOptions, "Consumer");
        _logger = _cluster.Logger;
    }

    /// <summary>The assigned partitions.</summary>
    public IReadOnlyList<TopicPartition> Assignment
    {
        get { lock (_lock) return _order.Select(s => s.TopicPartition).ToList(); }
    }

    /// <summary>
    /// Replaces the assignment. Partitions that stay assigned keep their position; new ones start without one
    /// (see <see cref="ConsumerOptions.AutoOffsetReset"/>, or call <see cref="SeekAsync"/>).
    /// </summary>
    public void Assign(IEnumerable<TopicPartition> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var wanted = new List<TopicPartition>();
        foreach (var tp in partitions)
        {
            ArgumentException.ThrowIfNullOrEmpty(tp.Topic, nameof(partitions));
            if (tp.Partition < 0) throw new ArgumentOutOfRangeException(nameof(partitions), $"partition {tp} is negative");
            if (!wanted.Contains(tp)) wanted.Add(tp);
        }
        lock (_lock)
        {
            var kept = new Dictionary<TopicPartition, PartitionState>();
            foreach (var tp in wanted) kept[tp] = _states.TryGetValue(tp, out var s) ? s : new PartitionState(tp);
            _states.Clear();
            _order.Clear();
            foreach (var tp in wanted)
            {
                _states[tp] = kept[tp];
                _order.Add(kept[tp]);
            }
            _cursor = 0;
            SignalChange();
        }
    }

    private void SignalChange()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    /// <summary>Drops every partition.</summary>
    public void Unassign() => Assign([]);

    /// <summary>The offset of the next record <see cref="ConsumeAsync(CancellationToken)"/> returns for <paramref name="topicPartition"/>; null when not known yet.</summary>
    public long? Position(TopicPartition topicPartition)
    {
        lock (_lock)
        {
            var state = GetState(topicPartition);
            return state.Position >= 0 ? state.Position : null;
        }
    }

    private PartitionState GetState(TopicPartition tp) =>
        _states.TryGetValue(tp, out var state) ? state : throw new InvalidOperationException($"{tp} is not assigned to this consumer");

    /// <summary>
    /// Moves the position of an assigned partition: to the first record (<see cref="Offset.Earliest"/>), the end of the
    /// log (<see cref="Offset.Latest"/>), an exact offset (<see cref="Offset.Sequence"/>), or the first record at or after
    /// a time (<see cref="Offset.Timestamp"/>; the end of the log when there is none). Buffered records are dropped.
    /// </summary>
    public async Task SeekAsync(TopicPartition topicPartition, Offset offset, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        lock (_lock) GetState(topicPartition);
        long position = offset.Kind switch
        {
            OffsetKind.Sequence => offset.SequenceValue,
            OffsetKind.Earliest => await ResolveAsync(topicPartition, PartitionRequests.EarliestTimestamp, cancellationToken).ConfigureAwait(false),
            OffsetKind.Latest => await ResolveAsync(topicPartition, PartitionRequests.LatestTimestamp, cancellationToken).ConfigureAwait(false),
            OffsetKind.Timestamp => await ResolveAsync(topicPartition, offset.TimestampValue.ToUnixTimeMilliseconds(), cancellationToken).ConfigureAwait(false),
            _ => throw new ArgumentException($"a Kafka partition cannot seek to {offset}: custom offsets have no meaning here", nameof(offset)),
        };
        lock (_lock) SetPosition(GetState(topicPartition), position);
    }

    private void SetPosition(PartitionState state, long position)
    {
        state.Position = position;
        state.Generation++;
        state.Buffer.Clear();
        state.BufferEnd = -1;
        state.HasWatermarks = false;
        state.EofReported = false;
        state.NeedsReset = false;
        state.Error = null;
        state.RetryAt = 0;
        state.ConsecutiveErrors = 0;
        SignalChange();
    }

    /// <summary>An offset by ListOffsets; a timestamp with no record at or after it resolves to the end of the log.</summary>
    private async Task<long> ResolveAsync(TopicPartition tp, long timestamp, CancellationToken cancellationToken)
    {
        var listed = await ListOffsetAsync(tp, timestamp, cancellationToken).ConfigureAwait(false);
        if (listed.Offset < 0 && timestamp >= 0) listed = await ListOffsetAsync(tp, PartitionRequests.LatestTimestamp, cancellationToken).ConfigureAwait(false);
        return listed.Offset;
    }

    private async Task<ListedOffset> ListOffsetAsync(TopicPartition tp, long timestamp, CancellationToken cancellationToken)
    {
        var (results, failures) = await PartitionRequests.ListOffsetsAsync(_cluster, new Dictionary<TopicPartition, long> { [tp] = timestamp },
            _options.IsolationLevel, cancellationToken).ConfigureAwait(false);
        if (failures.TryGetValue(tp, out var failure)) throw failure;
        return results[tp];
    }

    /// <summary>
    /// The log end offset (the last stable offset with <see cref="IsolationLevel.ReadCommitted"/>) minus the position,
    /// asking the partition's leader for the end.
    /// </summary>
    public async Task<long> GetLagAsync(TopicPartition topicPartition, CancellationToken cancellationToken = default)
    {
        long position;
        lock (_lock) position = GetState(topicPartition).Position;
        if (position < 0) throw new InvalidOperationException($"{topicPartition} has no position yet: seek or consume first");
        var end = await ListOffsetAsync(topicPartition, PartitionRequests.LatestTimestamp, cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            if (_states.TryGetValue(topicPartition, out var s) && s.Position >= 0) position = s.Position;
        }
        return Math.Max(0, end.Offset - position);
    }

    /// <summary>The lag as of the last fetch (its high-water mark minus the position), without asking the broker; null when not known.</summary>
    public long? GetCachedLag(TopicPartition topicPartition)
    {
        lock (_lock)
        {
            var s = GetState(topicPartition);
            long end = EndOffset(s);
            return s.Position >= 0 && end >= 0 && s.HasWatermarks ? Math.Max(0, end - s.Position) : null;
        }
    }

    /// <summary>Log start and end offsets of the last fetch of a partition; null before any.</summary>
    public WatermarkOffsets? GetWatermarkOffsets(TopicPartition topicPartition)
    {
        lock (_lock)
        {
            var s = GetState(topicPartition);
            return s.HighWatermark >= 0 ? new WatermarkOffsets(s.LogStartOffset, s.HighWatermark) : null;
        }
    }

    /// <summary>Log start and end offsets of any partition, asked from its leader.</summary>
    public async Task<WatermarkOffsets> QueryWatermarkOffsetsAsync(TopicPartition topicPartition, CancellationToken cancellationToken = default)
    {
        var low = ListOffsetAsync(topicPartition, PartitionRequests.EarliestTimestamp, cancellationToken);
        var high = ListOffsetAsync(topicPartition, PartitionRequests.LatestTimestamp, cancellationToken);
        return new WatermarkOffsets((await low.ConfigureAwait(false)).Offset, (await high.ConfigureAwait(false)).Offset);
    }

    private long EndOffset(PartitionState s) =>
        _options.IsolationLevel == IsolationLevel.ReadCommitted && s.LastStableOffset >= 0 ? s.LastStableOffset : s.HighWatermark;

    /// <summary>Every record (and end-of-partition notice) as it arrives, until cancelled.</summary>
    public async IAsyncEnumerable<ConsumeResult> ConsumeAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true) yield return await ConsumeAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The next record (or end-of-partition notice), waiting as long as it takes.</summary>
    public async Task<ConsumeResult> ConsumeAsync(CancellationToken cancellationToken = default) =>
        (await ConsumeCoreAsync(long.MaxValue, cancellationToken).ConfigureAwait(false))!;

    /// <summary>The next record (or end-of-partition notice), or null when none arrives within <paramref name="timeout"/>.</summary>
    public Task<ConsumeResult?> ConsumeAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ConsumeCoreAsync(timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency), cancellationToken);

    private async Task<ConsumeResult?> ConsumeCoreAsync(long deadline, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Exchange(ref _consuming, 1) != 0) throw new InvalidOperationException("ConsumeAsync is already running: a consumer serves one caller at a time");
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
                ProcessCompletedFetches();
                lock (_lock)
                {
                    if (TryTakeNext() is { } result) return result;
                }
                await ResetPositionsAsync(cancellationToken).ConfigureAwait(false);
                lock (_lock)
                {
                    if (TryTakeNext() is { } result) return result;
                }
                long now = Stopwatch.GetTimestamp();
                if (now >= deadline) return null;
                var waits = StartFetches(now, out long retryAt);
                using var timers = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                long wakeAt = Math.Min(retryAt, deadline);
                if (wakeAt < long.MaxValue) waits.Add(Task.Delay(TicksToTimeSpan(wakeAt - now), timers.Token));
                // With nothing to fetch (no assignment), only a change, the deadline or cancellation ends the wait.
                await Task.WhenAny(waits).WaitAsync(cancellationToken).ConfigureAwait(false);
                timers.Cancel();
            }
        }
        finally
        {
            Volatile.Write(ref _consuming, 0);
        }
    }

    private static TimeSpan TicksToTimeSpan(long ticks) => TimeSpan.FromSeconds(Math.Max(0, ticks) / (double)Stopwatch.Frequency) + TimeSpan.FromMilliseconds(1);

    /// <summary>The next buffered record, end-of-partition notice or partition error, taking partitions in turn.</summary>
    private ConsumeResult? TryTakeNext()
    {
        int n = _order.Count;
        for (int i = 0; i < n; i++)
        {
            int index = (_cursor + i) % n;
            var s = _order[index];
            if (s.Buffer.Count > 0)
            {
                var record = s.Buffer.Dequeue();
                s.Position = record.Offset + 1;
                if (s.Buffer.Count == 0)
                {
                    if (s.BufferEnd > s.Position) s.Position = s.BufferEnd;
                    _cursor = (index + 1) % n;
                }
                else _cursor = index;
                s.EofReported = false;
                return record;
            }
            if (s.Error is { } error)
            {
                s.Error = null;
                _cursor = (index + 1) % n;
                throw error;
            }
            if (_options.EnablePartitionEof && !s.EofReported && s.Position >= 0 && s.HasWatermarks && !s.NeedsReset && s.Position >= EndOffset(s))
            {
                s.EofReported = true;
                _cursor = (index + 1) % n;
                return new ConsumeResult(s.TopicPartition, s.Position, DateTimeOffset.FromUnixTimeMilliseconds(-1), TimestampType.NotAvailable,
                    null, null, Array.Empty<RecordHeader>(), null, isPartitionEof: true);
            }
        }
        return null;
    }

    /// <summary>Gives partitions without a position (or out of range) one, per <see cref="ConsumerOptions.AutoOffsetReset"/>.</summary>
    private async Task ResetPositionsAsync(CancellationToken cancellationToken)
    {
        List<(PartitionState State, int Generation)> toReset;
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            toReset = _order.Where(s => (s.Position < 0 || s.NeedsReset) && s.Error is null && s.RetryAt <= now && !DeferIfLeaderless(s, now))
                .Select(s => (s, s.Generation)).ToList();
            if (toReset.Count == 0) return;
            if (_options.AutoOffsetReset == AutoOffsetReset.None)
            {
                foreach (var (s, _) in toReset)
                {
                    s.Error = s.NeedsReset
                        ? new KafkaException(ErrorCode.OffsetOutOfRange, $"offset {s.Position} is out of range for {s.TopicPartition} (log {s.LogStartOffset}..{s.HighWatermark}) and AutoOffsetReset is None", null, s.TopicPartition)
                        : new InvalidOperationException($"{s.TopicPartition} has no position and AutoOffsetReset is None: call SeekAsync first");
                    s.NeedsReset = false;
                    s.RetryAt = now + (long)(_cluster.Backoff(0).TotalSeconds * Stopwatch.Frequency);
                }
                return;
            }
        }
        long spec = _options.AutoOffsetReset == AutoOffsetReset.Earliest ? PartitionRequests.EarliestTimestamp : PartitionRequests.LatestTimestamp;
        var (results, failures) = await PartitionRequests.ListOffsetsAsync(_cluster, toReset.ToDictionary(x => x.State.TopicPartition, _ => spec),
            _options.IsolationLevel, cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            foreach (var (s, generation) in toReset)
            {
                if (s.Generation != generation || !_states.TryGetValue(s.TopicPartition, out var current) || current != s) continue;
                if (results.TryGetValue(s.TopicPartition, out var listed))
                {
                    if (s.NeedsReset)
                        _logger.LogInformation("Offset {Offset} of {Partition} is out of range; resetting to the {Policy} offset {New}",
                            s.Position, s.TopicPartition, _options.AutoOffsetReset, listed.Offset);
                    SetPosition(s, listed.Offset);
                }
                else if (failures.TryGetValue(s.TopicPartition, out var failure) && failure.Error == ErrorCode.LeaderNotAvailable)
                {
                    // No leader (offline partition): not the caller's error; wait for one as the Java consumer does.
                    s.RetryAt = Stopwatch.GetTimestamp() + (long)(_cluster.Backoff(s.LeaderlessLookups++).TotalSeconds * Stopwatch.Frequency);
                    if (s.LeaderlessLookups == 1)
                        _logger.LogWarning("{Partition} has no leader (offline?); waiting for one while the other partitions are read", s.TopicPartition);
                }
                else if (failure is not null)
                {
                    s.Error = failure;
                    s.RetryAt = Stopwatch.GetTimestamp() + (long)(_cluster.Backoff(2).TotalSeconds * Stopwatch.Frequency);
                }
            }
        }
    }

    /// <summary>Starts a fetch for each broker that leads partitions ready for one; returns what to wait on.</summary>
    private List<Task> StartFetches(long now, out long retryAt)
    {
        retryAt = long.MaxValue;
        var waits = new List<Task>();
        var byNode = new Dictionary<int, List<Requested>>();
        var lookups = new List<string>();
        lock (_lock)
        {
            foreach (var s in _order)
            {
                if (s.Error is null && s.RetryAt > now && s.Buffer.Count == 0) retryAt = Math.Min(retryAt, s.RetryAt);
                if (s.Position < 0 || s.NeedsReset || s.Buffer.Count > 0 || s.InFlightFetch != 0 || s.Error is not null) continue;
                if (s.RetryAt > now) continue;
                if (DeferIfLeaderless(s, now)) continue;
                if (!_cluster.TryGetLeader(s.TopicPartition, out int leader, out _))
                {
                    if (!_metadataLookups.ContainsKey(s.TopicPartition.Topic)) lookups.Add(s.TopicPartition.Topic);
                    if (leader < 0) continue;
                }
                if (_fetches.ContainsKey(leader)) continue;
                if (!byNode.TryGetValue(leader, out var list)) byNode[leader] = list = [];
                list.Add(new Requested(s, s.Generation, s.Position));
            }
            foreach (var topic in lookups.Distinct())
                _metadataLookups[topic] = LookUpTopicAsync(topic);
            foreach (var (node, partitions) in byNode)
            {
                long id = ++_nextFetchId;
                foreach (var r in partitions) r.State.InFlightFetch = id;
                _fetches[node] = FetchAsync(id, node, partitions.ToDictionary(r => r.State.TopicPartition));
            }
            waits.AddRange(_fetches.Values);
            waits.AddRange(_metadataLookups.Values);
            waits.Add(_changed.Task);
        }
        return waits;
    }

    /// <summary>
    /// When the metadata names <paramref name="s"/> leaderless (an offline partition), puts it aside for a back-off and
    /// asks for the topic's metadata afresh, as the Java consumer waits for a leader: no error, no tight loop, and the
    /// topic's other partitions go on being fetched. Under the lock.
    /// </summary>
    private bool DeferIfLeaderless(PartitionState s, long now)
    {
        if (!_cluster.IsKnownLeaderless(s.TopicPartition))
        {
            s.LeaderlessLookups = 0;
            return false;
        }
        var delay = _cluster.Backoff(s.LeaderlessLookups++);
        s.RetryAt = now + (long)(delay.TotalSeconds * Stopwatch.Frequency);
        string topic = s.TopicPartition.Topic;
        if (!_metadataLookups.ContainsKey(topic))
        {
            _cluster.InvalidateTopic(topic);
            _metadataLookups[topic] = LookUpTopicAsync(topic);
        }
        if (s.LeaderlessLookups == 1) _logger.LogWarning("{Partition} has no leader (offline?); waiting for one while the other partitions are read", s.TopicPartition);
        return true;
    }

    private async Task LookUpTopicAsync(string topic)
    {
        await Task.Yield(); // the caller records this lookup under its lock before the lookup can finish and remove itself
        try
        {
            await _cluster.GetTopicAsync(topic, allowAutoCreate: false, _cluster.Lifetime).ConfigureAwait(false);
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            var error = e as KafkaException ?? new KafkaException(ErrorCode.NetworkException, "the consumer was disposed", e);
            lock (_lock)
            {
                long retryAt = Stopwatch.GetTimestamp() + (long)(_cluster.Backoff(3).TotalSeconds * Stopwatch.Frequency);
                foreach (var s in _order)
                {
                    if (s.TopicPartition.Topic != topic) continue;
                    s.Error = new KafkaException(error.Error, $"consuming {s.TopicPartition}: {error.Message}", error, s.TopicPartition);
                    s.RetryAt = retryAt;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            lock (_lock) _metadataLookups.Remove(topic);
        }
    }

    private async Task<FetchOutcome> FetchAsync(long id, int node, Dictionary<TopicPartition, Requested> partitions)
    {
        var names = new Dictionary<Guid, string>();
        foreach (var topic in partitions.Keys.Select(tp => tp.Topic).Distinct())
            if (_cluster.TryGetCachedTopic(topic) is { TopicId: var topicId } && topicId != Guid.Empty) names[topicId] = topic;
        bool allIds = partitions.Keys.Select(tp => tp.Topic).Distinct().All(t => names.ContainsValue(t));
        try
        {
            var (response, version) = await _cluster.SendAsync<FetchRequest, FetchResponse>(node, v => new FetchRequest
            {
                ReplicaId = -1,
                MaxWaitMs = (int)_options.MaxWait.TotalMilliseconds,
                MinBytes = _options.MinBytes,
                MaxBytes = _options.MaxBytes,
                IsolationLevel = (sbyte)_options.IsolationLevel,
                SessionId = 0,
                SessionEpoch = -1, // no fetch session: every request is complete
                Topics = partitions.Values.GroupBy(r => r.State.TopicPartition.Topic).Select(g => new FetchRequest.FetchTopic
                {
                    Topic = g.Key,
                    TopicId = names.FirstOrDefault(kv => kv.Value == g.Key).Key,
                    Partitions = g.Select(r => new FetchRequest.FetchTopic.FetchPartition
                    {
                        Partition = r.State.TopicPartition.Partition,
                        FetchOffset = r.Offset,
                        PartitionMaxBytes = _options.MaxPartitionBytes,
                        CurrentLeaderEpoch = -1,
                        LogStartOffset = -1,
                    }).ToList(),
                }).ToList(),
                RackId = "",
            }, _cluster.Lifetime, extraTimeout: _options.MaxWait, maxVersion: allIds ? null : (short)12).ConfigureAwait(false);
            return new FetchOutcome(id, node, partitions, response, version, names, null);
        }
        catch (KafkaException e)
        {
            return new FetchOutcome(id, node, partitions, null, 0, names, e);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return new FetchOutcome(id, node, partitions, null, 0, names, new KafkaException(ErrorCode.NetworkException, "the consumer was disposed", e));
        }
        catch (Exception e)
        {
            return new FetchOutcome(id, node, partitions, null, 0, names, new KafkaException(ErrorCode.UnknownServerError, $"fetch from broker {node} failed: {e.Message}", e));
        }
    }

    private void ProcessCompletedFetches()
    {
        lock (_lock)
        {
            foreach (var (node, task) in _fetches.Where(kv => kv.Value.IsCompleted).ToList())
            {
                _fetches.Remove(node);
                Process(task.Result);
            }
        }
    }

    private void Process(FetchOutcome outcome)
    {
        long now = Stopwatch.GetTimestamp();
        foreach (var r in outcome.Partitions.Values)
            if (r.State.InFlightFetch == outcome.Id) r.State.InFlightFetch = 0;

        if (outcome.Error is null && outcome.Response!.ErrorCode != 0)
        {
            var error = (ErrorCode)outcome.Response.ErrorCode;
            outcome = outcome with { Error = KafkaException.FromCode(error, $"fetch from broker {outcome.Node}") };
        }
        if (outcome.Error is { } failure)
        {
            foreach (var r in outcome.Partitions.Values) PartitionFailed(r, failure, now);
            return;
        }

        // Partitions left out of the answer (a broker trimming its response) are simply fetched again.
        foreach (var topic in outcome.Response!.Responses)
        {
            string? name = outcome.Version >= 13 ? outcome.TopicNames.GetValueOrDefault(topic.TopicId) : topic.Topic;
            if (name is null) continue;
            foreach (var data in topic.Partitions)
            {
                var tp = new TopicPartition(name, data.PartitionIndex);
                if (!outcome.Partitions.TryGetValue(tp, out var requested)) continue;
                var s = requested.State;
                if (!_states.TryGetValue(tp, out var current) || current != s || s.Generation != requested.Generation || s.Position != requested.Offset) continue;
                var error = (ErrorCode)data.ErrorCode;
                if (error == ErrorCode.None)
                {
                    s.ConsecutiveErrors = 0;
                    s.HighWatermark = data.HighWatermark;
                    if (data.LastStableOffset >= 0) s.LastStableOffset = data.LastStableOffset;
                    if (data.LogStartOffset >= 0) s.LogStartOffset = data.LogStartOffset;
                    s.HasWatermarks = true;
                    Decode(s, requested.Offset, data);
                }
                else if (error == ErrorCode.OffsetOutOfRange)
                {
                    if (data.HighWatermark >= 0) s.HighWatermark = data.HighWatermark;
                    if (data.LogStartOffset >= 0) s.LogStartOffset = data.LogStartOffset;
                    s.NeedsReset = true;
                }
                else PartitionFailed(requested, KafkaException.FromCode(error, $"fetching {tp} at offset {requested.Offset}", null, tp), now);
            }
        }
    }

    private void PartitionFailed(Requested requested, KafkaException error, long now)
    {
        var s = requested.State;
        if (!_states.TryGetValue(s.TopicPartition, out var current) || current != s || s.Generation != requested.Generation) return;
        if (KafkaErrors.InvalidatesMetadata(error.Error)) _cluster.InvalidateTopic(s.TopicPartition.Topic);
        s.ConsecutiveErrors++;
        s.RetryAt = now + (long)(_cluster.Backoff(s.ConsecutiveErrors - 1).TotalSeconds * Stopwatch.Frequency);
        if (!error.IsRetriable || s.ConsecutiveErrors > _cluster.Options.Retries)
        {
            s.Error = error.TopicPartition is null ? new KafkaException(error.Error, $"fetching {s.TopicPartition}: {error.Message}", error, s.TopicPartition) : error;
            s.ConsecutiveErrors = 0;
        }
        else
        {
            _logger.LogDebug("Fetch of {Partition} failed, retrying: {Error}", s.TopicPartition, error.Message);
        }
    }

    /// <summary>
    /// Turns the batches of a fetch answer into results: records before the fetch offset (a batch fetched from its
    /// middle) are skipped, control batches and aborted transactions (read_committed) are dropped, and a partial
    /// batch at the end (cut by the size limit) is left for the next fetch.
    /// </summary>
    private void Decode(PartitionState s, long fetchOffset, FetchResponse.FetchableTopicResponse.PartitionData data)
    {
        if (data.Records is not MemoryRecords { Length: > 0 } records) return;
        var tp = s.TopicPartition;
        bool readCommitted = _options.IsolationLevel == IsolationLevel.ReadCommitted;
        var aborted = readCommitted && data.AbortedTransactions is { Count: > 0 } list
            ? new PriorityQueue<long, long>(list.Select(a => (a.ProducerId, a.FirstOffset)))
            : null;
        var abortedProducers = new HashSet<long>();
        long next = fetchOffset;
        int batches = 0;
        var iterator = new RecordBatchIterator(records.Bytes);
        try
        {
            while (iterator.MoveNext())
            {
                batches++;
                var batch = iterator.Current;
                var h = batch.Header;
                if (h.NextOffset <= fetchOffset) continue;
                next = Math.Max(next, h.NextOffset);
                if (aborted is not null)
                    while (aborted.TryPeek(out long producerId, out long firstOffset) && firstOffset <= h.LastOffset)
                    {
                        aborted.Dequeue();
                        abortedProducers.Add(producerId);
                    }
                if (h.IsControl)
                {
                    if (readCommitted && IsAbortMarker(batch.Bytes)) abortedProducers.Remove(h.ProducerId);
                    continue;
                }
                if (readCommitted && h.IsTransactional && abortedProducers.Contains(h.ProducerId)) continue;
                var type = h.IsLogAppendTime ? TimestampType.LogAppendTime : TimestampType.CreateTime;
                int? leaderEpoch = h.PartitionLeaderEpoch >= 0 ? h.PartitionLeaderEpoch : null;
                foreach (var r in RecordBatch.ReadRecords(batch.Bytes, _options.CheckCrcs))
                {
                    if (r.Offset < fetchOffset) continue;
                    s.Buffer.Enqueue(new ConsumeResult(tp, r.Offset, DateTimeOffset.FromUnixTimeMilliseconds(r.Timestamp),
                        r.Timestamp < 0 ? TimestampType.NotAvailable : type, r.Key, r.Value, r.Headers, leaderEpoch, isPartitionEof: false));
                }
            }
        }
        catch (InvalidRecordException e)
        {
            // What was decoded before the bad batch is still handed out; the error follows it.
            s.Error = new KafkaException(ErrorCode.CorruptMessage, $"fetching {tp} at offset {next}: {e.Message}", e, tp);
        }
        if (batches == 0 && iterator.RemainingBytes > 0 && records.Length >= _options.MaxPartitionBytes)
        {
            // Only an old broker cuts the first batch: it can never arrive whole within MaxPartitionBytes.
            s.Error = new KafkaException(ErrorCode.MessageTooLarge,
                $"the batch at offset {fetchOffset} of {tp} is larger than MaxPartitionBytes ({_options.MaxPartitionBytes}); raise it to read on", null, tp);
        }
        s.BufferEnd = next;
        if (s.Buffer.Count == 0 && next > s.Position) s.Position = next; // only control batches or skipped records
    }

    /// <summary>A control batch's record key is (version int16, type int16): type 0 aborts, 1 commits.</summary>
    private static bool IsAbortMarker(ReadOnlyMemory<byte> batch)
    {
        try
        {
            var records = RecordBatch.ReadRecords(batch, verifyCrc: false);
            return records.Count > 0 && records[0].Key is { Length: >= 4 } key && BinaryPrimitives.ReadInt16BigEndian(key.Span[2..]) == 0;
        }
        catch (InvalidRecordException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_lock) SignalChange(); // a consume waiting on nothing in particular notices
        await _cluster.DisposeAsync().ConfigureAwait(false);
        Task[] pending;
        lock (_lock) pending = [.. _fetches.Values, .. _metadataLookups.Values];
        try { await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); } catch (Exception) { }
    }
}
