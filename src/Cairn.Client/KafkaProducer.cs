// Over 400 lines: the accumulator, the sender and their shared state (batches, sequences, retries) are one lock's
// worth of logic; split across files it would need that lock's invariants explained in several places.
using System.Diagnostics;
using System.Text;
using Cairn.Client.Internal;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;

namespace Cairn.Client;

/// <summary>
/// Produces records. Each partition's records gather in a batch (a magic v2 record batch, compressed with
/// <see cref="ProducerOptions.Compression"/>) that is sent when it reaches <see cref="ProducerOptions.BatchSizeBytes"/>
/// or has waited <see cref="ProducerOptions.Linger"/>; the batches ready for one broker travel in one Produce request,
/// with up to <see cref="ProducerOptions.MaxInFlightPerConnection"/> requests pipelined per connection. Retriable
/// failures are retried until <see cref="ProducerOptions.DeliveryTimeout"/>. Safe for concurrent use.
/// </summary>
public sealed class KafkaProducer : IAsyncDisposable
{
    private sealed record PendingRecord(TaskCompletionSource<DeliveryResult> Completion, long Timestamp);

    private sealed class ProducerBatch(TopicPartition topicPartition, CompressionCodec codec, long createdAt, long deadline)
    {
        public TopicPartition TopicPartition { get; } = topicPartition;
        public RecordBatchBuilder Builder { get; } = new(codec, 4096);
        public List<PendingRecord> Records { get; } = [];
        public long CreatedAt { get; } = createdAt;
        public long Deadline { get; } = deadline;
        public long ReservedBytes;
        public byte[]? Built;
        public long ProducerId = -1;
        public short ProducerEpoch = -1;
        public int BaseSequence = -1;
        public int Attempts;
        public long RetryAt;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class PartitionQueue(TopicPartition topicPartition)
    {
        public TopicPartition TopicPartition { get; } = topicPartition;
        public ProducerBatch? Open;
        public List<ProducerBatch> Ready { get; } = [];
        public List<ProducerBatch> InFlight { get; } = [];
        /// <summary>A batch came back for a retry: nothing more goes out until what is in flight has returned.</summary>
        public bool Retrying;
        public int NextSequence;
        public bool IsEmpty => Open is null && Ready.Count == 0 && InFlight.Count == 0;
    }

    private readonly KafkaCluster _cluster;
    private readonly ProducerOptions _options;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly Dictionary<TopicPartition, PartitionQueue> _queues = [];
    private readonly Dictionary<int, int> _inFlightByNode = [];
    private readonly Dictionary<string, int> _stickyPartition = new(StringComparer.Ordinal);
    private readonly HashSet<string> _refreshingTopics = new(StringComparer.Ordinal);
    /// <summary>Per topic, how many metadata lookups in a row found a partition with batches still leaderless (under the lock).</summary>
    private readonly Dictionary<string, int> _leaderlessRefreshes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Task _sender;
    private readonly long _lingerTicks;
    private readonly long _deliveryTimeoutTicks;
    private long _bufferedBytes;
    private TaskCompletionSource _bufferFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _flushing;
    private bool _closing;
    private bool _stopped;
    private int _disposed;
    private KafkaException? _fatal;
    // Idempotence: the producer id and epoch, and whether they must be (re)initialized before anything more is sent.
    private long _producerId = -1;
    private short _producerEpoch = -1;
    private bool _needsProducerId;

    public KafkaProducer(KafkaClientOptions clientOptions, ProducerOptions? options = null)
    {
        options ??= new ProducerOptions();
        options.Validate();
        _options = options;
        _cluster = new KafkaCluster(clientOptions, "Producer");
        _logger = _cluster.Logger;
        _lingerTicks = (long)(options.Linger.TotalSeconds * Stopwatch.Frequency);
        _deliveryTimeoutTicks = (long)(options.DeliveryTimeout.TotalSeconds * Stopwatch.Frequency);
        _needsProducerId = options.Idempotent;
        _sender = Task.Run(SendLoopAsync);
    }

    /// <summary>The idempotent producer's id and epoch (-1 before InitProducerId, or when not idempotent).</summary>
    public (long ProducerId, short Epoch) ProducerIdentity { get { lock (_lock) return (_producerId, _producerEpoch); } }

    /// <summary>Produces to the partition chosen by the key (murmur2, as the Java client), or a sticky partition for null keys.</summary>
    public Task<DeliveryResult> ProduceAsync(string topic, Message message, CancellationToken cancellationToken = default) =>
        ProduceCoreAsync(topic, null, message, cancellationToken);

    /// <summary>Produces to an explicit partition.</summary>
    public Task<DeliveryResult> ProduceAsync(TopicPartition topicPartition, Message message, CancellationToken cancellationToken = default) =>
        ProduceCoreAsync(topicPartition.Topic, topicPartition.Partition, message, cancellationToken);

    /// <summary>A record on its way into a batch: waiting for metadata or buffer space keeps the order of the calls.</summary>
    private sealed class PendingProduce(string topic, int? explicitPartition, Message message, long timestamp, long size)
    {
        public string Topic { get; } = topic;
        public int? ExplicitPartition { get; } = explicitPartition;
        public Message Message { get; } = message;
        public long Timestamp { get; } = timestamp;
        public long Size { get; } = size;
        public TaskCompletionSource<DeliveryResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>In a batch: from here on cancelling the call no longer stops the record.</summary>
        public bool Appended;
    }

    private readonly Queue<PendingProduce> _waiting = new();
    private Task _pump = Task.CompletedTask;

    private async Task<DeliveryResult> ProduceCoreAsync(string topic, int? explicitPartition, Message message, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (explicitPartition < 0) throw new ArgumentOutOfRangeException(nameof(explicitPartition), "a partition cannot be negative");
        if (message.Headers is { } headers)
            foreach (var h in headers)
                if (h.Key is null) throw new ArgumentException("a header key cannot be null", nameof(message));
        if (Volatile.Read(ref _fatal) is { } fatal) throw new KafkaException(fatal.Error, "the producer has failed: " + fatal.Message, fatal);
        cancellationToken.ThrowIfCancellationRequested();

        long timestamp = message.Timestamp?.ToUnixTimeMilliseconds() ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var pending = new PendingProduce(topic, explicitPartition, message, timestamp, EstimateSize(message));
        bool wake;
        lock (_lock)
        {
            if (_closing) throw new ObjectDisposedException(nameof(KafkaProducer));
            // Straight into a batch when nothing is queued ahead and metadata and buffer space are at hand.
            if (_waiting.Count > 0 || !TryAppend(pending, out wake))
            {
                _waiting.Enqueue(pending);
                wake = false;
                if (_pump.IsCompleted) _pump = Task.Run(PumpAsync);
            }
        }
        if (wake) Wake();
        if (!cancellationToken.CanBeCanceled) return await pending.Completion.Task.ConfigureAwait(false);
        try
        {
            return await pending.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled while still waiting for metadata or buffer space: the record is dropped. Once in a batch it
            // will be sent anyway; cancelling only stopped waiting for the result.
            TaskCompletionSource? recheck = null;
            lock (_lock)
            {
                if (!pending.Appended && pending.Completion.TrySetCanceled(cancellationToken))
                {
                    // The pump may be waiting for buffer space on this very record: let it look again.
                    recheck = _bufferFreed;
                    _bufferFreed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
            recheck?.TrySetResult();
            throw;
        }
    }

    /// <summary>Appends a record to its partition's batch, if the topic's metadata is cached and the buffer has room (under the lock).</summary>
    private bool TryAppend(PendingProduce pending, out bool wake)
    {
        wake = false;
        var metadata = _cluster.TryGetCachedTopic(pending.Topic);
        if (metadata is null || metadata.PartitionCount == 0) return false;
        if (pending.ExplicitPartition >= metadata.PartitionCount) return false;
        if (_bufferedBytes > 0 && _bufferedBytes + pending.Size > _options.BufferMemoryBytes) return false;

        int partition;
        if (pending.ExplicitPartition is { } p) partition = p;
        else if (pending.Message.Key is { } key) partition = Partitioner.ForKey(key.Span, metadata.PartitionCount);
        else if (!_stickyPartition.TryGetValue(pending.Topic, out partition) || partition >= metadata.PartitionCount
                 || (metadata.Partitions[partition].Leader < 0 && metadata.Partitions.Any(x => x.Leader >= 0)))
            _stickyPartition[pending.Topic] = partition = Partitioner.ForUnkeyed(metadata.Partitions, Random.Shared);

        var tp = new TopicPartition(pending.Topic, partition);
        if (!_queues.TryGetValue(tp, out var queue)) _queues[tp] = queue = new PartitionQueue(tp);
        var batch = queue.Open;
        if (batch is not null && batch.Records.Count > 0 && batch.Builder.UncompressedSizeInBytes + pending.Size > _options.BatchSizeBytes)
        {
            Seal(queue);
            batch = null;
            wake = true;
        }
        if (batch is null)
        {
            long now = Stopwatch.GetTimestamp();
            queue.Open = batch = new ProducerBatch(tp, _options.Compression, now, now + _deliveryTimeoutTicks);
            wake = true; // the sender has a new linger deadline to watch
        }
        var m = pending.Message;
        batch.Builder.Append(pending.Timestamp, m.Key, m.Value, m.Headers);
        batch.Records.Add(new PendingRecord(pending.Completion, pending.Timestamp));
        pending.Appended = true;
        batch.ReservedBytes += pending.Size;
        _bufferedBytes += pending.Size;
        if (batch.Builder.UncompressedSizeInBytes >= _options.BatchSizeBytes)
        {
            Seal(queue);
            wake = true;
        }
        return true;
    }

    /// <summary>Moves waiting records into batches in order, fetching metadata and waiting for buffer space as needed.</summary>
    private async Task PumpAsync()
    {
        var token = _cluster.Lifetime;
        while (true)
        {
            PendingProduce head;
            Task bufferFreed;
            bool wake;
            lock (_lock)
            {
                while (_waiting.TryPeek(out var first) && first.Completion.Task.IsCompleted) _waiting.Dequeue();
                if (!_waiting.TryPeek(out head!)) return;
                bufferFreed = _bufferFreed.Task;
                if (TryAppend(head, out wake))
                {
                    _waiting.Dequeue();
                    if (wake) Wake();
                    continue;
                }
            }
            try
            {
                var metadata = _cluster.TryGetCachedTopic(head.Topic);
                if (metadata is null || head.ExplicitPartition >= metadata.PartitionCount)
                {
                    if (metadata is not null) _cluster.InvalidateTopic(head.Topic);
                    metadata = await _cluster.GetTopicAsync(head.Topic, allowAutoCreate: true, token).ConfigureAwait(false);
                    if (head.ExplicitPartition is { } p && p >= metadata.PartitionCount)
                        throw new KafkaException(ErrorCode.UnknownTopicOrPartition,
                            $"partition {head.Topic}/{p} does not exist (the topic has {metadata.PartitionCount} partitions)", null, new TopicPartition(head.Topic, p));
                    continue;
                }
                await bufferFreed.WaitAsync(token).ConfigureAwait(false); // no room in the buffer: wait until a batch completes
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                List<PendingProduce> dropped;
                lock (_lock) { dropped = [.. _waiting]; _waiting.Clear(); }
                foreach (var d in dropped) d.Completion.TrySetException(new ObjectDisposedException(nameof(KafkaProducer)));
                return;
            }
            catch (Exception e)
            {
                // This topic cannot take records now: fail what waits for it, keep the rest going.
                var error = e as KafkaException ?? new KafkaException(ErrorCode.UnknownServerError, e.Message, e);
                List<PendingProduce> failed;
                lock (_lock)
                {
                    failed = _waiting.Where(w => w.Topic == head.Topic && (w == head || head.ExplicitPartition is null || w.ExplicitPartition == head.ExplicitPartition)).ToList();
                    var rest = _waiting.Where(w => !failed.Contains(w)).ToList();
                    _waiting.Clear();
                    foreach (var w in rest) _waiting.Enqueue(w);
                }
                foreach (var f in failed)
                    f.Completion.TrySetException(error.TopicPartition is null && f.ExplicitPartition is null
                        ? new KafkaException(error.Error, $"producing to topic '{f.Topic}': {error.Message}", error)
                        : error);
            }
        }
    }

    private static long EstimateSize(Message message)
    {
        long size = 24 + (message.Key?.Length ?? 0) + (message.Value?.Length ?? 0);
        if (message.Headers is { } headers)
            foreach (var h in headers) size += 8 + Encoding.UTF8.GetByteCount(h.Key ?? "") + (h.Value?.Length ?? 0);
        return size;
    }

    private void ReleaseBuffer(long size)
    {
        TaskCompletionSource freed;
        lock (_lock)
        {
            _bufferedBytes -= size;
            freed = _bufferFreed;
            _bufferFreed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        freed.TrySetResult();
    }

    /// <summary>Closes the open batch of a partition (it is sent next) and moves null-key records of the topic to another partition.</summary>
    private void Seal(PartitionQueue queue)
    {
        if (queue.Open is not { } batch) return;
        queue.Open = null;
        queue.Ready.Add(batch);
        if (_stickyPartition.TryGetValue(queue.TopicPartition.Topic, out int sticky) && sticky == queue.TopicPartition.Partition)
            _stickyPartition.Remove(queue.TopicPartition.Topic);
    }

    private void Wake()
    {
        if (_wake.CurrentCount == 0) _wake.Release();
    }

    /// <summary>Sends everything produced so far at once (ignoring linger) and waits until each record is acknowledged or failed.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        List<Task> pending;
        Task pump;
        lock (_lock)
        {
            _flushing++; // from now on the sender sends every batch at once, freeing buffer space for waiting records
            pump = _pump;
        }
        try
        {
            Wake();
            await pump.WaitAsync(cancellationToken).ConfigureAwait(false); // records waiting for metadata or space get into batches first
        }
        catch
        {
            lock (_lock) _flushing--;
            throw;
        }
        lock (_lock)
        {
            pending = [];
            foreach (var q in _queues.Values)
            {
                if (q.Open is { } open) pending.Add(open.Done.Task);
                foreach (var b in q.Ready) pending.Add(b.Done.Task);
                foreach (var b in q.InFlight) pending.Add(b.Done.Task);
            }
        }
        try
        {
            Wake();
            await Task.WhenAll(pending).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_lock) _flushing--;
        }
    }

    // ------------------------------------------------------------------ sender

    private async Task SendLoopAsync()
    {
        var token = _cluster.Lifetime;
        try
        {
            while (true)
            {
                bool initProducerId;
                lock (_lock)
                {
                    initProducerId = _needsProducerId && _fatal is null && !_stopped &&
                        _queues.Values.All(q => q.InFlight.Count == 0) && _queues.Values.Any(q => q.Ready.Count > 0 || q.Open is not null);
                }
                if (initProducerId) await InitProducerIdAsync(token).ConfigureAwait(false);

                List<(int Node, List<ProducerBatch> Batches)> requests;
                List<string> refresh;
                TimeSpan wait;
                lock (_lock)
                {
                    (requests, refresh, wait) = Drain(Stopwatch.GetTimestamp());
                    if (_closing && _queues.Values.All(q => q.IsEmpty)) break;
                    if (_stopped) break;
                }
                foreach (var topic in refresh) _ = RefreshTopicAsync(topic, token);
                foreach (var (node, batches) in requests) _ = SendBatchesAsync(node, batches, token);
                if (requests.Count == 0) await _wake.WaitAsync(wait, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Producer sender stopped unexpectedly");
            FailEverything(new KafkaException(ErrorCode.UnknownServerError, "the producer's sender failed: " + e.Message, e));
        }
    }

    /// <summary>Picks the batches to send now (per broker), the topics whose metadata is needed, and how long to sleep otherwise.</summary>
    private (List<(int, List<ProducerBatch>)>, List<string>, TimeSpan) Drain(long now)
    {
        var byNode = new Dictionary<int, List<ProducerBatch>>();
        var refresh = new List<string>();
        long wakeAt = long.MaxValue;
        var expired = new List<(ProducerBatch, KafkaException)>();
        bool blocked = _needsProducerId || _fatal is not null;
        int maxInFlight = _options.EffectiveMaxInFlight;
        foreach (var q in _queues.Values)
        {
            if (q.Open is { } open)
            {
                if (_flushing > 0 || _closing || now - open.CreatedAt >= _lingerTicks) Seal(q);
                else wakeAt = Math.Min(wakeAt, open.CreatedAt + _lingerTicks);
            }
            while (q.Ready.Count > 0 && q.Ready[0].Deadline <= now)
            {
                var b = q.Ready[0];
                q.Ready.RemoveAt(0);
                if (b.BaseSequence >= 0) _needsProducerId = true; // its sequence numbers will never reach the broker
                expired.Add((b, new KafkaException(ErrorCode.RequestTimedOut,
                    $"{b.Records.Count} record(s) for {q.TopicPartition} not delivered within {_options.DeliveryTimeout.TotalMilliseconds:0} ms" +
                    (b.Attempts > 0 ? $" ({b.Attempts} attempts)" : ""), null, q.TopicPartition)));
            }
            if (q.Ready.Count == 0 || blocked) continue;
            if (q.Ready.Count > 0) wakeAt = Math.Min(wakeAt, q.Ready[0].Deadline);
            var head = q.Ready[0];
            if (head.RetryAt > now) { wakeAt = Math.Min(wakeAt, head.RetryAt); continue; }
            if (q.Retrying && q.InFlight.Count > 0) continue;
            if (q.InFlight.Count >= maxInFlight) continue;
            if (!_cluster.TryGetLeader(q.TopicPartition, out int leader, out _))
            {
                if (_refreshingTopics.Add(q.TopicPartition.Topic)) refresh.Add(q.TopicPartition.Topic);
                if (leader < 0) continue;
                // A stale but known leader is still used while the refresh runs.
            }
            if (_inFlightByNode.GetValueOrDefault(leader) >= maxInFlight && !byNode.ContainsKey(leader)) continue;
            if (!byNode.TryGetValue(leader, out var list)) byNode[leader] = list = [];
            q.Ready.RemoveAt(0);
            q.Retrying = false;
            if (_options.Idempotent && (head.BaseSequence < 0 || head.ProducerId != _producerId || head.ProducerEpoch != _producerEpoch))
            {
                head.ProducerId = _producerId;
                head.ProducerEpoch = _producerEpoch;
                head.BaseSequence = q.NextSequence;
                q.NextSequence = (int)(((long)q.NextSequence + head.Records.Count) % ((long)int.MaxValue + 1));
                head.Built = null;
            }
            q.InFlight.Add(head);
            list.Add(head);
        }
        foreach (var node in byNode.Keys) _inFlightByNode[node] = _inFlightByNode.GetValueOrDefault(node) + 1;
        if (expired.Count > 0) _ = Task.Run(() => { foreach (var (b, e) in expired) Complete(b, e); });
        var wait = wakeAt == long.MaxValue ? Timeout.InfiniteTimeSpan
            : TimeSpan.FromSeconds(Math.Max(0, wakeAt - now) / (double)Stopwatch.Frequency) + TimeSpan.FromMilliseconds(1);
        if (wait > TimeSpan.FromMinutes(10)) wait = TimeSpan.FromMinutes(10);
        return (byNode.Select(kv => (kv.Key, kv.Value)).ToList(), refresh, wait);
    }

    /// <summary>
    /// Looks the topic up again because a partition with batches has no known leader. Partitions the metadata names
    /// leaderless (offline) are asked about again with back-off, at most <see cref="KafkaClientOptions.Retries"/> times
    /// in a row; then their batches fail with LEADER_NOT_AVAILABLE while the topic's other partitions go on.
    /// </summary>
    private async Task RefreshTopicAsync(string topic, CancellationToken token)
    {
        try
        {
            int attempt;
            lock (_lock) attempt = _leaderlessRefreshes.GetValueOrDefault(topic);
            if (attempt > 0)
            {
                // The last answer had these partitions leaderless too: wait before asking (no tight loop), then ask afresh.
                await Task.Delay(_cluster.Backoff(attempt - 1), token).ConfigureAwait(false);
                _cluster.InvalidateTopic(topic);
            }
            var metadata = await _cluster.GetTopicAsync(topic, allowAutoCreate: true, token).ConfigureAwait(false);
            List<ProducerBatch> failed = [];
            lock (_lock)
            {
                var leaderless = _queues.Values
                    .Where(q => q.TopicPartition.Topic == topic && (q.Ready.Count > 0 || q.Open is not null)
                        && q.TopicPartition.Partition < metadata.PartitionCount && metadata.Partitions[q.TopicPartition.Partition].Leader < 0)
                    .ToList();
                if (leaderless.Count == 0) _leaderlessRefreshes.Remove(topic);
                else if (attempt < _cluster.Options.Retries) _leaderlessRefreshes[topic] = attempt + 1;
                else
                {
                    _leaderlessRefreshes.Remove(topic);
                    foreach (var q in leaderless)
                    {
                        foreach (var b in q.Ready) { if (b.BaseSequence >= 0) _needsProducerId = true; failed.Add(b); }
                        q.Ready.Clear();
                        if (q.Open is { } open) { failed.Add(open); q.Open = null; }
                    }
                }
            }
            foreach (var b in failed)
            {
                var p = metadata.Partitions[b.TopicPartition.Partition];
                Complete(b, new KafkaException(ErrorCode.LeaderNotAvailable, $"producing to {b.TopicPartition}: the partition has no leader" +
                    (p.Error != ErrorCode.None ? $" ({KafkaErrors.Describe(p.Error)})" : "") + $" after {attempt + 1} metadata lookups", null, b.TopicPartition));
            }
        }
        catch (KafkaException e)
        {
            // The lookup has retried already: what is waiting for this topic cannot be delivered.
            List<ProducerBatch> failed = [];
            lock (_lock)
            {
                foreach (var q in _queues.Values)
                {
                    if (q.TopicPartition.Topic != topic) continue;
                    failed.AddRange(q.Ready);
                    q.Ready.Clear();
                    if (q.Open is { } open) { failed.Add(open); q.Open = null; }
                }
            }
            foreach (var b in failed)
                Complete(b, new KafkaException(e.Error, $"producing to {b.TopicPartition}: {e.Message}", e, b.TopicPartition));
        }
        catch (Exception) when (token.IsCancellationRequested)
        {
        }
        finally
        {
            lock (_lock) _refreshingTopics.Remove(topic);
            Wake();
        }
    }

    private async Task InitProducerIdAsync(CancellationToken token)
    {
        long previousId;
        short previousEpoch;
        lock (_lock) (previousId, previousEpoch) = (_producerId, _producerEpoch);
        try
        {
            var (id, epoch) = await _cluster.RetryAsync(async _ =>
            {
                var (response, version) = await _cluster.SendToAnyAsync<InitProducerIdRequest, InitProducerIdResponse>(v => new InitProducerIdRequest
                {
                    TransactionalId = null,
                    TransactionTimeoutMs = int.MaxValue,
                    // KIP-360: present the current id and epoch to get the next epoch of the same id.
                    ProducerId = previousId,
                    ProducerEpoch = previousEpoch,
                }, token).ConfigureAwait(false);
                if (response.ErrorCode != 0) throw KafkaException.FromCode((ErrorCode)response.ErrorCode, "InitProducerId");
                return (response.ProducerId, response.ProducerEpoch);
            }, token).ConfigureAwait(false);
            lock (_lock)
            {
                _producerId = id;
                _producerEpoch = epoch;
                _needsProducerId = false;
                foreach (var q in _queues.Values)
                {
                    q.NextSequence = 0;
                    foreach (var b in q.Ready) { b.BaseSequence = -1; b.Built = null; }
                }
            }
            _logger.LogInformation("Idempotent producer id {ProducerId}, epoch {Epoch}", id, epoch);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            var fatal = e as KafkaException ?? new KafkaException(ErrorCode.UnknownServerError, e.Message, e);
            if (fatal.IsRetriable)
            {
                // Out of retries for now: what is waiting fails, the next records try again.
                FailQueued(new KafkaException(fatal.Error, "cannot obtain an idempotent producer id: " + fatal.Message, fatal));
                return;
            }
            _logger.LogError("Idempotent producer cannot obtain a producer id: {Error}", fatal.Message);
            Volatile.Write(ref _fatal, fatal);
            FailQueued(new KafkaException(fatal.Error, "cannot obtain an idempotent producer id: " + fatal.Message, fatal));
        }
    }

    private void FailQueued(KafkaException error)
    {
        List<ProducerBatch> failed = [];
        lock (_lock)
        {
            foreach (var q in _queues.Values)
            {
                failed.AddRange(q.Ready);
                q.Ready.Clear();
                if (q.Open is { } open) { failed.Add(open); q.Open = null; }
            }
        }
        foreach (var b in failed) Complete(b, error);
    }

    private void FailEverything(KafkaException error)
    {
        List<ProducerBatch> failed = [];
        lock (_lock)
        {
            _stopped = true;
            foreach (var q in _queues.Values)
            {
                failed.AddRange(q.Ready);
                failed.AddRange(q.InFlight);
                q.Ready.Clear();
                q.InFlight.Clear();
                if (q.Open is { } open) { failed.Add(open); q.Open = null; }
            }
        }
        foreach (var b in failed) Complete(b, error);
    }

    private async Task SendBatchesAsync(int node, List<ProducerBatch> batches, CancellationToken token)
    {
        try
        {
            foreach (var b in batches)
            {
                if (b.Built is not null) continue;
                b.Builder.ProducerId = b.ProducerId;
                b.Builder.ProducerEpoch = b.ProducerEpoch;
                b.Builder.BaseSequence = b.BaseSequence;
                b.Built = b.Builder.Build();
            }
            var acks = _options.EffectiveAcks;
            var request = new ProduceRequest
            {
                TransactionalId = null,
                Acks = (short)acks,
                TimeoutMs = (int)Math.Min(int.MaxValue, _cluster.Options.RequestTimeout.TotalMilliseconds),
                TopicData = batches.GroupBy(b => b.TopicPartition.Topic).Select(g => new ProduceRequest.TopicProduceData
                {
                    Name = g.Key,
                    PartitionData = g.Select(b => new ProduceRequest.TopicProduceData.PartitionProduceData
                    {
                        Index = b.TopicPartition.Partition, Records = new MemoryRecords(b.Built!),
                    }).ToList(),
                }).ToList(),
            };
            var connection = await _cluster.GetConnectionAsync(node, token).ConfigureAwait(false);
            if (acks == Acks.None)
            {
                short version = _cluster.ChooseVersion(connection, ApiKey.Produce);
                await connection.SendWithoutResponseAsync(ApiKey.Produce, version,
                    w => Protocol.Schema.MessageSerializer.Write(w, request, version), token).ConfigureAwait(false);
                foreach (var b in batches) Complete(b, -1, -1);
                return;
            }
            var (response, _) = await _cluster.SendAsync<ProduceRequest, ProduceResponse>(connection, _ => request, token).ConfigureAwait(false);
            var results = new Dictionary<TopicPartition, ProduceResponse.TopicProduceResponse.PartitionProduceResponse>();
            foreach (var t in response.Responses)
                foreach (var p in t.PartitionResponses)
                    results[new TopicPartition(t.Name, p.Index)] = p;
            foreach (var b in batches)
            {
                if (!results.TryGetValue(b.TopicPartition, out var r))
                {
                    Failed(b, new KafkaException(ErrorCode.UnknownServerError, $"the produce response does not mention {b.TopicPartition}", null, b.TopicPartition));
                    continue;
                }
                var error = (ErrorCode)r.ErrorCode;
                // A duplicate of a batch the broker already has (a retry of a lost response) is a success.
                if (error is ErrorCode.None or ErrorCode.DuplicateSequenceNumber) Complete(b, error == ErrorCode.None ? r.BaseOffset : -1, r.LogAppendTimeMs);
                else
                {
                    string? detail = r.ErrorMessage ?? (r.RecordErrors.Count > 0 ? r.RecordErrors[0].BatchIndexErrorMessage : null);
                    Failed(b, KafkaException.FromCode(error, $"producing to {b.TopicPartition}", detail, b.TopicPartition));
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            foreach (var b in batches) Complete(b, new KafkaException(ErrorCode.NetworkException, "the producer was disposed before delivery", null, b.TopicPartition));
        }
        catch (KafkaException e)
        {
            foreach (var b in batches) Failed(b, e.TopicPartition is null ? new KafkaException(e.Error, e.Message, e, b.TopicPartition) : e);
        }
        catch (Exception e)
        {
            foreach (var b in batches) Complete(b, new KafkaException(ErrorCode.UnknownServerError, $"producing to {b.TopicPartition}: {e.Message}", e, b.TopicPartition));
        }
        finally
        {
            lock (_lock) _inFlightByNode[node] = _inFlightByNode.GetValueOrDefault(node) - 1;
            Wake();
        }
    }

    /// <summary>A batch failed: back to the front of its queue for a retry, or failed for good.</summary>
    private void Failed(ProducerBatch batch, KafkaException error)
    {
        if (KafkaErrors.InvalidatesMetadata(error.Error)) _cluster.InvalidateTopic(batch.TopicPartition.Topic);
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (!_queues.TryGetValue(batch.TopicPartition, out var q) || !q.InFlight.Contains(batch)) return;
            bool retriable = error.IsRetriable;
            if (!retriable && _options.Idempotent && error.Error is ErrorCode.OutOfOrderSequenceNumber or ErrorCode.UnknownProducerId)
            {
                // Out of order because an earlier batch of this partition failed and will be resent: resend this one after it.
                // Otherwise the broker's and our sequence numbers disagree (it lost the producer's state, or an earlier batch
                // failed for good): the next epoch restarts the sequences at 0 (KIP-360), and this batch is resent in it.
                bool earlierPending = q.Ready.Concat(q.InFlight).Any(b => b != batch && b.BaseSequence >= 0 &&
                    b.ProducerEpoch == batch.ProducerEpoch && SequenceBefore(b.BaseSequence, batch.BaseSequence));
                if (!earlierPending && batch.ProducerId == _producerId && batch.ProducerEpoch == _producerEpoch) _needsProducerId = true;
                retriable = true;
            }
            if (retriable && now < batch.Deadline && !_stopped)
            {
                q.InFlight.Remove(batch);
                batch.Attempts++;
                batch.RetryAt = now + (long)(_cluster.Backoff(batch.Attempts - 1).TotalSeconds * Stopwatch.Frequency);
                int at = 0;
                while (at < q.Ready.Count && q.Ready[at].BaseSequence >= 0 && SequenceBefore(q.Ready[at].BaseSequence, batch.BaseSequence)) at++;
                if (batch.BaseSequence < 0) at = Math.Min(at, q.Ready.Count);
                q.Ready.Insert(at, batch);
                q.Retrying = true;
                if (batch.Attempts == 1 || batch.Attempts % 10 == 0)
                    _logger.LogDebug("Retrying {Count} record(s) for {Partition} (attempt {Attempt}): {Error}", batch.Records.Count, batch.TopicPartition, batch.Attempts + 1, error.Message);
                return;
            }
            // The broker never appended this batch: with idempotence, later sequence numbers would leave a gap.
            if (_options.Idempotent && batch.BaseSequence >= 0) _needsProducerId = true;
        }
        Complete(batch, error);
    }

    private static bool SequenceBefore(int a, int b) => a != b && (uint)(b - a) < int.MaxValue / 2;

    private void Complete(ProducerBatch batch, long baseOffset, long logAppendTime)
    {
        Remove(batch);
        var tp = batch.TopicPartition;
        for (int i = 0; i < batch.Records.Count; i++)
        {
            var r = batch.Records[i];
            var result = logAppendTime >= 0
                ? new DeliveryResult(tp, baseOffset < 0 ? -1 : baseOffset + i, DateTimeOffset.FromUnixTimeMilliseconds(logAppendTime), TimestampType.LogAppendTime)
                : new DeliveryResult(tp, baseOffset < 0 ? -1 : baseOffset + i, DateTimeOffset.FromUnixTimeMilliseconds(r.Timestamp), TimestampType.CreateTime);
            r.Completion.TrySetResult(result);
        }
        Finish(batch);
    }

    private void Complete(ProducerBatch batch, KafkaException error)
    {
        Remove(batch);
        foreach (var r in batch.Records) r.Completion.TrySetException(error);
        Finish(batch);
    }

    private void Remove(ProducerBatch batch)
    {
        lock (_lock)
        {
            if (_queues.TryGetValue(batch.TopicPartition, out var q))
            {
                q.InFlight.Remove(batch);
                q.Ready.Remove(batch);
                if (q.Open == batch) q.Open = null;
            }
        }
    }

    private void Finish(ProducerBatch batch)
    {
        long reserved = Interlocked.Exchange(ref batch.ReservedBytes, 0);
        if (reserved > 0) ReleaseBuffer(reserved);
        batch.Builder.Dispose();
        batch.Done.TrySetResult();
        Wake();
    }

    /// <summary>Flushes what was produced (waiting up to the delivery timeout), then closes the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            await FlushAsync().WaitAsync(_options.DeliveryTimeout + TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or KafkaException)
        {
            _logger.LogWarning("Producer closed with records not delivered: {Error}", e.Message);
        }
        lock (_lock) _closing = true;
        Wake();
        try { await _sender.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); } catch (Exception) { }
        FailEverything(new KafkaException(ErrorCode.NetworkException, "the producer was disposed before delivery"));
        await _cluster.DisposeAsync().ConfigureAwait(false);
    }
}
