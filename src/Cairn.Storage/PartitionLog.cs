using Cairn.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Storage;

/// <summary>
/// The log of one partition: a directory of segments named by base offset. Offsets are assigned at
/// append time, sequentially; the high-water mark (== log end offset, single node) moves as soon as a
/// batch is written to the file and is immediately visible to reads. Appends are serialized by a short
/// lock around offset assignment and one positional write; reads are lock-free.
/// </summary>
/// <remarks>
/// This type is what the broker holds (its handlers see it as <see cref="IPartitionLog"/>); it coordinates the
/// jobs, each in its own type over the shared <see cref="PartitionState"/>: <see cref="LogRecovery"/> (open),
/// <see cref="LogAppender"/> (append), <see cref="LogFlusher"/> (fsync), <see cref="LogReader"/> (fetch and
/// timestamp lookups) and <see cref="LogRetention"/> (DeleteRecords and retention). It owns the long-poll waiters and
/// shutdown.
/// </remarks>
public sealed class PartitionLog : IPartitionLog, IDisposable
{
    internal const string CleanShutdownFile = "clean-shutdown";
    internal const string LogStartCheckpointFile = "log-start-offset.checkpoint";
    internal const string ProducerSnapshotFile = "producer-state.snapshot";

    private readonly PartitionState _state;
    private readonly LogFlusher _flusher;
    private readonly LogAppender _appender;
    private readonly LogReader _reader;
    private readonly LogRetention _retention;
    private readonly bool _ownsCloser;
    private readonly List<AppendWaiter> _waiters = new(); // long polls waiting for the next append (guarded by itself)

    public string Topic { get; }
    public int Partition { get; }
    public string Directory { get; }
    public LogConfig Config => _state.Config;

    /// <summary>Next offset to assign == high-water mark (single node). Includes data not yet fsynced.</summary>
    public long HighWatermark => Volatile.Read(ref _state.NextOffset);
    public long LogEndOffset => Volatile.Read(ref _state.NextOffset);
    /// <summary>The first offset readable (low watermark).</summary>
    public long LogStartOffset => Volatile.Read(ref _state.LogStartOffset);
    /// <summary>Every offset below this is fsynced.</summary>
    public long DurableOffset => _flusher.DurableOffset;
    public bool IsClosed => _state.Closed;
    /// <summary>True when recovery found the files inconsistent (see <see cref="OfflineReason"/>): reads and appends get KAFKA_STORAGE_ERROR.</summary>
    public bool IsOffline => _state.OfflineReason is not null;
    public string? OfflineReason => _state.OfflineReason;
    public int SegmentCount => Volatile.Read(ref _state.Segments).Length;

    /// <summary>Total bytes of all segment files.</summary>
    public long SizeInBytes
    {
        get
        {
            long total = 0;
            foreach (var s in Volatile.Read(ref _state.Segments)) total += s.Size;
            return total;
        }
    }

    /// <summary>Base offsets of the segments, oldest first.</summary>
    public IReadOnlyList<long> SegmentBaseOffsets
    {
        get
        {
            var segs = Volatile.Read(ref _state.Segments);
            var list = new long[segs.Length];
            for (int i = 0; i < segs.Length; i++) list[i] = segs[i].BaseOffset;
            return list;
        }
    }

    private PartitionLog(string directory, string topic, int partition, PartitionState state, long durableOffset, bool ownsCloser)
    {
        Directory = directory;
        Topic = topic;
        Partition = partition;
        _state = state;
        _ownsCloser = ownsCloser;
        _flusher = new LogFlusher(state, durableOffset);
        _appender = new LogAppender(state, _flusher);
        _reader = new LogReader(state);
        _retention = new LogRetention(state);
    }

    /// <summary>
    /// Opens (creating if needed) the partition log in <paramref name="directory"/>, recovering it: after an
    /// unclean shutdown (no clean-shutdown marker) the active segment is checked batch by batch (CRC,
    /// contiguous offsets) and truncated at the first torn or corrupt batch; damaged or missing indexes are
    /// rebuilt; the next offset comes from the last valid batch on disk.
    /// </summary>
    public static PartitionLog Open(string directory, string topic, int partition, LogConfig? config = null,
        StorageOptions? options = null, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        return Open(directory, topic, partition, config ?? options?.DefaultConfig ?? LogConfig.Default, options ?? new StorageOptions(),
            (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<PartitionLog>(), time, new DeferredCloser(time),
            new FileHandleBudget(options?.MaxOpenFiles ?? StorageOptions.DefaultMaxOpenFiles), ownsCloser: true);
    }

    internal static PartitionLog Open(string directory, string topic, int partition, LogConfig config, StorageOptions options,
        ILogger logger, TimeProvider time, DeferredCloser closer, FileHandleBudget files, bool ownsCloser)
    {
        var state = new PartitionState(directory, $"{topic}-{partition}", config, options, time, logger, closer, files);
        long durable;
        try
        {
            durable = LogRecovery.Recover(state);
        }
        catch (PartitionOfflineException e)
        {
            // One damaged partition must not stop the broker: it stays listed, answers KAFKA_STORAGE_ERROR, files untouched.
            logger.LogError("{Message}", e.Message);
            state.OfflineReason = e.Message;
            state.Closed = true;
            state.Segments = [];
            durable = 0;
        }
        return new PartitionLog(directory, topic, partition, state, durable, ownsCloser);
    }

    public void UpdateConfig(LogConfig config)
    {
        _state.Config = config;
        foreach (var s in Volatile.Read(ref _state.Segments)) s.IndexInterval = config.IndexIntervalBytes;
    }

    // Append

    /// <inheritdoc cref="Append(Span{byte})"/>
    public AppendResult Append(Memory<byte> records) => Append(records.Span);

    /// <summary>
    /// Appends one or more concatenated v2 record batches (a produce request's records field), stored
    /// verbatim except for the assigned base offsets written into them in place (and, for LogAppendTime
    /// topics, the timestamp type bit, max timestamp and CRC). All batches are validated before anything is
    /// written; any error appends nothing: CORRUPT_MESSAGE (incomplete batch, bad length, CRC mismatch),
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT (magic != 2), INVALID_RECORD (no records, lastOffsetDelta != count-1),
    /// MESSAGE_TOO_LARGE (batch &gt; max.message.bytes), RECORD_LIST_TOO_LARGE (batch &gt; segment.bytes),
    /// OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH (idempotent producers), KAFKA_STORAGE_ERROR,
    /// UNKNOWN_TOPIC_OR_PARTITION (log closed or deleted). A retried idempotent batch that is still cached
    /// is not appended again; the result carries the original offsets and <see cref="AppendResult.IsDuplicate"/>.
    /// An empty input appends nothing and succeeds with offsets -1.
    /// </summary>
    public AppendResult Append(Span<byte> records)
    {
        var result = _appender.Append(records);
        if (result.Succeeded && !result.IsDuplicate && result.LastOffset >= 0)
        {
            SignalAppend();
            _flusher.FlushIfMessagesDue(result.LastOffset);
        }
        return result;
    }

    /// <summary>
    /// <see cref="Append(Span{byte})"/>, then fsync before returning when the broker is configured to flush
    /// before acknowledging acks=-1 (<paramref name="acksAll"/> and <see cref="StorageOptions.FlushOnAck"/>) or
    /// when flush.messages is reached.
    /// </summary>
    public async ValueTask<AppendResult> AppendAsync(Memory<byte> records, bool acksAll = false, CancellationToken cancellationToken = default)
    {
        var result = Append(records.Span);
        if (!result.Succeeded || result.LastOffset < 0) return result;
        if ((acksAll && _state.Options.FlushOnAck) || _flusher.UnflushedMessages >= _state.Config.FlushMessages)
            await FlushAsync(result.LastOffset, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Rolls the active segment now if it holds data (admin/test hook).</summary>
    public void Roll()
    {
        lock (_state.Lock)
        {
            if (_state.Closed || _state.Active.IsEmpty) return;
            _state.RollLocked(_state.NowMs, "requested");
        }
    }

    // Reads

    /// <summary>
    /// Reads whole batches starting with the batch that contains <paramref name="fetchOffset"/> (clients skip
    /// the records before it), up to <paramref name="maxBytes"/>; if the first batch alone is larger it is
    /// returned whole when <paramref name="minOneBatch"/> (KIP-74), else nothing. Stays within one segment.
    /// OFFSET_OUT_OF_RANGE when fetchOffset &lt; log start offset or &gt; high-water mark; empty records at the
    /// high-water mark. The payload copies straight from the segment file when serialized.
    /// </summary>
    public ReadResult Read(long fetchOffset, int maxBytes, bool minOneBatch = true) => _reader.Read(fetchOffset, maxBytes, minOneBatch);

    /// <summary>
    /// The first offset (&gt;= log start offset) whose record timestamp is &gt;= <paramref name="timestamp"/>, with
    /// that record's timestamp; (-1, -1) when no record is that new. Uses the time index to find where to start,
    /// scans batch headers from there and decodes only the matching batch. (Compressed batches whose codec
    /// fails yield the batch's first offset and its max timestamp.)
    /// </summary>
    public OffsetAndTimestamp FindOffsetByTimestamp(long timestamp) => _reader.FindOffsetByTimestamp(timestamp);

    /// <summary>
    /// The record with the largest timestamp: its offset and timestamp (first such record). The segment and
    /// batch come from the in-memory max-timestamp tracking, then the batch is decoded to find the exact record;
    /// if it cannot be decoded the batch's last offset is returned (what Kafka did before 3.7 for v2 batches).
    /// (-1, -1) for an empty log.
    /// </summary>
    public OffsetAndTimestamp GetMaxTimestamp() => _reader.GetMaxTimestamp();

    // Long poll

    // Registration is before the waiter's HWM check and the wake is after the HWM write, both under the list's
    // lock, so a wait never misses an append. Waiters are woken in place: Wake only queues their continuation.
    public void AddAppendWaiter(AppendWaiter waiter)
    {
        lock (_waiters) _waiters.Add(waiter);
    }

    public void RemoveAppendWaiter(AppendWaiter waiter)
    {
        lock (_waiters) _waiters.Remove(waiter);
    }

    private void SignalAppend()
    {
        lock (_waiters)
            foreach (var waiter in _waiters) waiter.Wake();
    }

    // Flush

    /// <summary>
    /// Ensures the record at <paramref name="upToOffset"/> (and everything before it) is fsynced. Returns at once
    /// when it already is; concurrent callers share one fsync. Offsets beyond the log end are clamped.
    /// </summary>
    public ValueTask FlushAsync(long upToOffset, CancellationToken cancellationToken = default) => _flusher.FlushAsync(upToOffset, cancellationToken);

    /// <summary>Synchronous fsync of everything appended so far.</summary>
    public void Flush() => _flusher.Flush();

    /// <summary>flush.ms: starts a flush when there is unflushed data and the last flush is older than flush.ms.</summary>
    public bool FlushIfDue(DateTimeOffset now) => _flusher.FlushIfDue(now);

    // Log start offset, DeleteRecords, retention

    /// <summary>
    /// DeleteRecords: moves the log start offset up to <paramref name="beforeOffset"/> and deletes the segments
    /// entirely below it. OFFSET_OUT_OF_RANGE when beforeOffset is negative or past the high-water mark.
    /// Returns the new low watermark (unchanged when beforeOffset is below it).
    /// </summary>
    public DeleteRecordsResult DeleteRecords(long beforeOffset) => _retention.DeleteRecords(beforeOffset);

    /// <summary>
    /// Applies retention.ms (by each segment's largest timestamp) and retention.bytes to whole old segments
    /// (for cleanup.policy including delete), and removes segments below the log start offset. The active
    /// segment is rolled first if it has expired by time. Advances the log start offset.
    /// </summary>
    public RetentionResult ApplyRetention(DateTimeOffset now) => _retention.ApplyRetention(now);

    // Close

    /// <summary>Clean close: fsync everything, write the producer-state snapshot and the clean-shutdown marker.</summary>
    public void Dispose() => Close();

    public void Close()
    {
        LogSegment[] segs;
        lock (_state.Lock)
        {
            if (_state.Closed) return;
            _state.Closed = true;
            segs = _state.Segments;
            _state.Active.Seal();
        }
        SignalAppend();
        _flusher.WaitForFlushInFlight();
        try
        {
            foreach (var s in segs) s.Flush(includeIndexes: true);
            _flusher.MarkDurable(_state.NextOffset);
            FileIO.WriteAtomic(Path.Combine(Directory, ProducerSnapshotFile), _state.Producers.Serialize(_state.NextOffset));
            _state.Checkpoint.Write(ref _state.LogStartOffset);
            FileIO.WriteAtomic(Path.Combine(Directory, CleanShutdownFile), "clean"u8);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _state.Logger.LogError(e, "{Partition}: clean shutdown failed; the next start will recover", _state.Name);
        }
        foreach (var s in segs) s.CloseHandles();
        if (_ownsCloser) _state.Closer.Dispose();
    }

    /// <summary>Closes the log and removes its directory (DeleteTopic). In-flight reads keep working until file.delete.delay.ms.</summary>
    internal void CloseAndDelete()
    {
        var segs = MarkClosed();
        var delay = TimeSpan.FromMilliseconds(Math.Min(_state.Config.FileDeleteDelayMs, int.MaxValue));
        foreach (var s in segs) _state.Closer.Schedule(s, delay);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _state.Logger.LogWarning(e, "{Partition}: could not remove directory {Directory}", _state.Name, Directory);
        }
        _state.Logger.LogInformation("{Partition}: deleted", _state.Name);
    }

    /// <summary>Test hook: drop everything as a crash would (no flush, no snapshot, no clean-shutdown marker).</summary>
    internal void SimulateCrash()
    {
        foreach (var s in MarkClosed()) s.CloseHandles();
        if (_ownsCloser) _state.Closer.Dispose();
    }

    private LogSegment[] MarkClosed()
    {
        LogSegment[] segs;
        lock (_state.Lock)
        {
            _state.Closed = true;
            segs = _state.Segments;
        }
        SignalAppend();
        return segs;
    }

    public override string ToString() => _state.Name;
}
