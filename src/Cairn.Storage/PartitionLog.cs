using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Storage;

/// <summary>
/// The log of one partition: a directory of segments named by base offset. Offsets are assigned at
/// append time, sequentially; the high-water mark (== log end offset, single node) moves as soon as a
/// batch is written to the file and is immediately visible to reads. Appends are serialized by a short
/// lock around offset assignment and one positional write; reads are lock-free.
/// </summary>
public sealed class PartitionLog : IDisposable
{
    internal const string CleanShutdownFile = "clean-shutdown";
    internal const string LogStartCheckpointFile = "log-start-offset.checkpoint";
    internal const string ProducerSnapshotFile = "producer-state.snapshot";

    private readonly StorageOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DeferredCloser _closer;
    private readonly bool _ownsCloser;
    private readonly string _name;

    private volatile LogConfig _config;
    private readonly Lock _lock = new();
    private LogSegment[] _segments;
    private LogSegment _active;
    private long _nextOffset;
    private long _logStartOffset;
    private long _durableOffset;
    private long _unflushedMessages;
    private long _lastFlushMs;
    private readonly ProducerStateManager _producers = new();
    private readonly List<AppendWaiter> _waiters = new(); // long polls waiting for the next append (guarded by itself)
    private volatile bool _closed;

    private readonly Lock _flushGate = new();
    private Task? _flushTask;
    private readonly Lock _checkpointLock = new();
    private long _checkpointedLogStart = -1;

    public string Topic { get; }
    public int Partition { get; }
    public string Directory { get; }
    public LogConfig Config => _config;

    /// <summary>Next offset to assign == high-water mark (single node). Includes data not yet fsynced.</summary>
    public long HighWatermark => Volatile.Read(ref _nextOffset);
    public long LogEndOffset => Volatile.Read(ref _nextOffset);
    /// <summary>The first offset readable (low watermark).</summary>
    public long LogStartOffset => Volatile.Read(ref _logStartOffset);
    /// <summary>Every offset below this is fsynced.</summary>
    public long DurableOffset => Volatile.Read(ref _durableOffset);
    public bool IsClosed => _closed;
    public int SegmentCount => Volatile.Read(ref _segments).Length;

    /// <summary>Total bytes of all segment files.</summary>
    public long SizeInBytes
    {
        get
        {
            long total = 0;
            foreach (var s in Volatile.Read(ref _segments)) total += s.Size;
            return total;
        }
    }

    /// <summary>Base offsets of the segments, oldest first.</summary>
    public IReadOnlyList<long> SegmentBaseOffsets
    {
        get
        {
            var segs = Volatile.Read(ref _segments);
            var list = new long[segs.Length];
            for (int i = 0; i < segs.Length; i++) list[i] = segs[i].BaseOffset;
            return list;
        }
    }

    private PartitionLog(string directory, string topic, int partition, LogConfig config, StorageOptions options,
        TimeProvider time, ILogger logger, DeferredCloser closer, bool ownsCloser)
    {
        Directory = directory;
        Topic = topic;
        Partition = partition;
        _config = config;
        _options = options;
        _time = time;
        _logger = logger;
        _closer = closer;
        _ownsCloser = ownsCloser;
        _name = $"{topic}-{partition}";
        _segments = [];
        _active = null!;
    }

    // =============================================================================================
    // Open / recovery

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
            (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<PartitionLog>(), time, new DeferredCloser(time), ownsCloser: true);
    }

    internal static PartitionLog Open(string directory, string topic, int partition, LogConfig config, StorageOptions options,
        ILogger logger, TimeProvider time, DeferredCloser closer, bool ownsCloser)
    {
        var log = new PartitionLog(directory, topic, partition, config, options, time, logger, closer, ownsCloser);
        log.Recover();
        return log;
    }

    private void Recover()
    {
        // A partition being created has nothing to recover: report it as new, not as an unclean shutdown.
        bool isNew = !System.IO.Directory.Exists(Directory) || !System.IO.Directory.EnumerateFileSystemEntries(Directory).Any();
        System.IO.Directory.CreateDirectory(Directory);
        var markerPath = Path.Combine(Directory, CleanShutdownFile);
        bool clean = File.Exists(markerPath);
        long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();

        var bases = new List<long>();
        var indexFiles = new List<(string Path, long Base)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
        {
            var file = Path.GetFileName(path);
            if (file.EndsWith(".tmp", StringComparison.Ordinal) || file.EndsWith(".deleted", StringComparison.Ordinal))
            {
                FileIO.TryDelete(path);
                continue;
            }
            if (LogSegment.TryParseBaseOffset(file, LogSegment.LogSuffix, out var b)) bases.Add(b);
            else if (LogSegment.TryParseBaseOffset(file, LogSegment.IndexSuffix, out b)
                     || LogSegment.TryParseBaseOffset(file, LogSegment.TimeIndexSuffix, out b))
                indexFiles.Add((path, b));
        }
        bases.Sort();
        foreach (var (path, b) in indexFiles)
            if (bases.BinarySearch(b) < 0)
            {
                _logger.LogWarning("{Partition}: deleting index file without a segment: {File}", _name, Path.GetFileName(path));
                FileIO.TryDelete(path);
            }

        long checkpoint = ReadLogStartCheckpoint();
        var cfg = _config;
        var segments = new List<LogSegment>(bases.Count + 1);
        try
        {
            for (int i = 0; i < bases.Count; i++)
            {
                bool active = i == bases.Count - 1;
                var seg = LogSegment.Open(Directory, bases[i], active, fullRecovery: active && !clean, cfg.IndexIntervalBytes,
                    _logger, _name, nowMs, out _);
                segments.Add(seg);
            }

            // Segments must chain: a gap means an older segment lost its tail; what follows it cannot be trusted.
            for (int i = 0; i + 1 < segments.Count; i++)
            {
                if (segments[i].NextOffset == segments[i + 1].BaseOffset) continue;
                _logger.LogWarning("{Partition}: segment {Base} ends at offset {Next} but the next segment starts at {NextBase}; deleting {Count} later segment(s)",
                    _name, segments[i].BaseOffset, segments[i].NextOffset, segments[i + 1].BaseOffset, segments.Count - i - 1);
                for (int j = i + 1; j < segments.Count; j++)
                {
                    segments[j].CloseHandles();
                    segments[j].DeleteFiles();
                }
                segments.RemoveRange(i + 1, segments.Count - i - 1);
                // The new last segment becomes the active one: load its indexes and open them for appends.
                var last = segments[i];
                long lastBase = last.BaseOffset;
                last.CloseHandles();
                segments[i] = LogSegment.Open(Directory, lastBase, active: true, fullRecovery: true, cfg.IndexIntervalBytes, _logger, _name, nowMs, out _);
                break;
            }

            long next = segments.Count > 0 ? segments[^1].NextOffset : Math.Max(0, checkpoint);
            long logStart = Math.Max(Math.Max(0, checkpoint), segments.Count > 0 ? segments[0].BaseOffset : next);
            if (logStart > next)
            {
                _logger.LogWarning("{Partition}: log start offset {LogStart} is past the recovered log end {Next}; starting an empty log at {LogStart}",
                    _name, logStart, next, logStart);
                foreach (var s in segments) { s.CloseHandles(); s.DeleteFiles(); }
                segments.Clear();
                next = logStart;
            }
            if (segments.Count == 0)
                segments.Add(LogSegment.Create(Directory, next, _logger, _name));

            _segments = segments.ToArray();
            _active = _segments[^1];
            _nextOffset = next;
            _logStartOffset = logStart;
            _durableOffset = clean ? next : _active.BaseOffset;
            _lastFlushMs = nowMs;
            foreach (var s in _segments) s.IndexInterval = cfg.IndexIntervalBytes;
        }
        catch
        {
            foreach (var s in segments) s.CloseHandles();
            throw;
        }

        // Producer state: the clean-shutdown snapshot, else replay the tail of the log.
        var snapshot = clean ? FileIO.TryReadAll(Path.Combine(Directory, ProducerSnapshotFile)) : null;
        if (snapshot is null || !_producers.TryLoad(snapshot, _nextOffset))
        {
            _producers.Clear();
            int batches = 0;
            int from = Math.Max(0, _segments.Length - 2);
            for (int i = from; i < _segments.Length; i++)
                _segments[i].WalkHeaders(h => { batches++; _producers.Replay(h); });
            if (_producers.Count > 0 || (!clean && !isNew))
                _logger.LogInformation("{Partition}: rebuilt producer state ({Producers} producers) from {Batches} batches", _name, _producers.Count, batches);
        }
        _producers.RemoveBefore(_logStartOffset);

        if (checkpoint != _logStartOffset) WriteLogStartCheckpoint();
        else _checkpointedLogStart = checkpoint;
        FileIO.TryDelete(markerPath);
        if (isNew) _logger.LogInformation("{Partition}: created", _name);
        else _logger.LogInformation("{Partition}: opened ({Shutdown} shutdown), {Segments} segment(s), log start {LogStart}, log end {LogEnd}",
            _name, clean ? "clean" : "unclean", _segments.Length, _logStartOffset, _nextOffset);
    }

    private long ReadLogStartCheckpoint()
    {
        var bytes = FileIO.TryReadAll(Path.Combine(Directory, LogStartCheckpointFile));
        if (bytes is null) return 0;
        // Format: "0\n<offset>\n" (version, value).
        var text = Encoding.ASCII.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (text.Length >= 2 && text[0] == "0" && long.TryParse(text[1], NumberStyles.None, CultureInfo.InvariantCulture, out var v)) return v;
        _logger.LogWarning("{Partition}: unreadable log start offset checkpoint, using the first segment's base offset", _name);
        return 0;
    }

    private void WriteLogStartCheckpoint()
    {
        lock (_checkpointLock)
        {
            long value = Volatile.Read(ref _logStartOffset);
            if (value == _checkpointedLogStart) return;
            FileIO.WriteAtomic(Path.Combine(Directory, LogStartCheckpointFile),
                Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"0\n{value}\n")));
            _checkpointedLogStart = value;
        }
    }

    public void UpdateConfig(LogConfig config)
    {
        _config = config;
        foreach (var s in Volatile.Read(ref _segments)) s.IndexInterval = config.IndexIntervalBytes;
    }

    // =============================================================================================
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
        if (_closed) return AppendResult.Failed(ErrorCode.UnknownTopicOrPartition, LogStartOffset, "partition is closed");
        var cfg = _config;
        if (records.IsEmpty) return new AppendResult(ErrorCode.None, -1, -1, -1, LogStartOffset);

        BatchInfo[]? rented = null;
        Span<BatchInfo> infos = stackalloc BatchInfo[4];
        try
        {
            int count = 0;
            int pos = 0;
            bool anySequence = false;
            int recordCount = 0;
            while (pos < records.Length)
            {
                var rest = records[pos..];
                if (rest.Length <= RecordBatchHeader.MagicOffset)
                    return Fail(ErrorCode.CorruptMessage, "incomplete record batch");
                if (rest[RecordBatchHeader.MagicOffset] != 2)
                    return Fail(ErrorCode.UnsupportedForMessageFormat, $"record batch magic {(sbyte)rest[RecordBatchHeader.MagicOffset]} is not supported, only magic 2");
                if (rest.Length < RecordBatchHeader.Size)
                    return Fail(ErrorCode.CorruptMessage, "incomplete record batch header");
                int batchLength = BinaryPrimitives.ReadInt32BigEndian(rest[RecordBatchHeader.BatchLengthOffset..]);
                if (batchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead || batchLength > rest.Length - RecordBatchHeader.LogOverhead)
                    return Fail(ErrorCode.CorruptMessage, $"record batch length {batchLength} does not match the {rest.Length} bytes left");
                int size = batchLength + RecordBatchHeader.LogOverhead;
                if (size > cfg.MaxMessageBytes)
                    return Fail(ErrorCode.MessageTooLarge, $"record batch of {size} bytes exceeds max.message.bytes {cfg.MaxMessageBytes}");
                if (size > cfg.SegmentBytes)
                    return Fail(ErrorCode.RecordListTooLarge, $"record batch of {size} bytes exceeds segment.bytes {cfg.SegmentBytes}");
                var batch = rest[..size];
                if (!RecordBatchHeader.IsCrcValid(batch))
                    return Fail(ErrorCode.CorruptMessage, "record batch CRC mismatch");
                RecordBatchHeader.TryRead(batch, out var h);
                if (h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount - 1)
                    return Fail(ErrorCode.InvalidRecord, $"record batch with {h.RecordCount} records has lastOffsetDelta {h.LastOffsetDelta}");
                if ((int)h.Compression > 4)
                    return Fail(ErrorCode.UnsupportedCompressionType, $"unknown compression codec {(int)h.Compression}");
                if (count == infos.Length)
                {
                    var bigger = ArrayPool<BatchInfo>.Shared.Rent(count * 2);
                    infos.CopyTo(bigger);
                    if (rented is not null) ArrayPool<BatchInfo>.Shared.Return(rented);
                    rented = bigger;
                    infos = bigger;
                }
                infos[count] = new BatchInfo
                {
                    Position = pos,
                    Size = size,
                    LastOffsetDelta = h.LastOffsetDelta,
                    RecordCount = h.RecordCount,
                    MaxTimestamp = h.MaxTimestamp,
                    ProducerId = h.ProducerId,
                    ProducerEpoch = h.ProducerEpoch,
                    BaseSequence = h.BaseSequence,
                    IsControl = h.IsControl,
                };
                anySequence |= infos[count].HasSequence;
                recordCount += h.RecordCount;
                count++;
                pos += size;
            }
            infos = infos[..count];

            long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            long logAppendTime = -1;
            if (cfg.MessageTimestampType == TimestampType.LogAppendTime)
            {
                logAppendTime = nowMs;
                for (int i = 0; i < infos.Length; i++)
                {
                    var batch = records.Slice(infos[i].Position, infos[i].Size);
                    short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
                    BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..], (short)(attrs | 0x08));
                    BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..], nowMs);
                    BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..], Crc32C.Compute(batch[RecordBatchHeader.AttributesOffset..]));
                    infos[i].MaxTimestamp = nowMs;
                }
            }

            long baseOffset, lastOffset;
            lock (_lock)
            {
                if (_closed) return Fail(ErrorCode.UnknownTopicOrPartition, "partition is closed");
                if (anySequence)
                {
                    for (int i = 0; i < infos.Length; i++)
                    {
                        if (!infos[i].HasSequence) continue;
                        switch (_producers.Validate(infos, i, out var dup))
                        {
                            case ProducerStateManager.Check.Duplicate:
                                return new AppendResult(ErrorCode.None, dup.BaseOffset, dup.LastOffset,
                                    logAppendTime >= 0 ? dup.Timestamp : -1, LogStartOffset, null, IsDuplicate: true,
                                    (int)(dup.LastOffset - dup.BaseOffset + 1));
                            case ProducerStateManager.Check.OutOfOrderSequence:
                                return Fail(ErrorCode.OutOfOrderSequenceNumber,
                                    $"out of order sequence number {infos[i].BaseSequence} for producer {infos[i].ProducerId}");
                            case ProducerStateManager.Check.InvalidEpoch:
                                return Fail(ErrorCode.InvalidProducerEpoch,
                                    $"producer {infos[i].ProducerId} epoch {infos[i].ProducerEpoch} is older than the current one");
                        }
                    }
                }

                baseOffset = _nextOffset;
                long off = baseOffset;
                for (int i = 0; i < infos.Length; i++)
                {
                    infos[i].BaseOffset = off;
                    RecordBatchHeader.WriteBaseOffset(records.Slice(infos[i].Position, RecordBatchHeader.Size), off);
                    off += infos[i].LastOffsetDelta + 1L;
                }
                lastOffset = off - 1;

                var seg = _active;
                if (ShouldRoll(seg, records.Length, lastOffset, nowMs, cfg))
                    seg = RollLocked(nowMs, "size/age");
                try
                {
                    seg.Append(records, infos, cfg.IndexIntervalBytes, nowMs);
                }
                catch (IOException e)
                {
                    seg.TruncateToCommitted();
                    _logger.LogError(e, "{Partition}: append of {Bytes} bytes failed", _name, records.Length);
                    return Fail(ErrorCode.KafkaStorageError, e.Message);
                }

                if (anySequence)
                    for (int i = 0; i < infos.Length; i++)
                        if (infos[i].HasSequence)
                            _producers.Update(infos[i].ProducerId, infos[i].ProducerEpoch, infos[i].BaseSequence,
                                infos[i].LastOffsetDelta, infos[i].BaseOffset, infos[i].MaxTimestamp);
                Interlocked.Add(ref _unflushedMessages, recordCount);
                Volatile.Write(ref _nextOffset, off);
            }

            SignalAppend();
            if (Interlocked.Read(ref _unflushedMessages) >= cfg.FlushMessages)
                FlushInBackground(lastOffset);
            return new AppendResult(ErrorCode.None, baseOffset, lastOffset, logAppendTime, LogStartOffset, RecordCount: recordCount);
        }
        finally
        {
            if (rented is not null) ArrayPool<BatchInfo>.Shared.Return(rented);
        }

        AppendResult Fail(ErrorCode code, string message) => AppendResult.Failed(code, LogStartOffset, message);
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
        if ((acksAll && _options.FlushOnAck) || Interlocked.Read(ref _unflushedMessages) >= _config.FlushMessages)
            await FlushAsync(result.LastOffset, cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static bool ShouldRoll(LogSegment seg, long bytes, long lastOffset, long nowMs, LogConfig cfg)
    {
        long size = seg.Size;
        if (size == 0) return false;
        if (size + bytes > cfg.SegmentBytes) return true;
        if (size + bytes > int.MaxValue) return true;                   // index positions are int32
        if (lastOffset - seg.BaseOffset > int.MaxValue) return true;    // index relative offsets are int32
        return seg.RollBaseTimeMs >= 0 && nowMs - seg.RollBaseTimeMs > cfg.SegmentMs;
    }

    private LogSegment RollLocked(long nowMs, string reason)
    {
        var old = _active;
        old.Seal();
        var seg = LogSegment.Create(Directory, _nextOffset, _logger, _name);
        seg.IndexInterval = _config.IndexIntervalBytes;
        var segs = _segments;
        var next = new LogSegment[segs.Length + 1];
        Array.Copy(segs, next, segs.Length);
        next[^1] = seg;
        Volatile.Write(ref _segments, next);
        _active = seg;
        _logger.LogInformation("{Partition}: rolled new segment at offset {Base} ({Reason}; previous segment {OldBase}, {Size} bytes)",
            _name, seg.BaseOffset, reason, old.BaseOffset, old.Size);
        _ = Task.Run(() =>
        {
            try { old.FlushAndReleaseIndexFiles(); }
            catch (ObjectDisposedException) { }
            catch (IOException e) { _logger.LogWarning(e, "{Partition}: flushing rolled segment {Base} failed", _name, old.BaseOffset); }
        });
        return seg;
    }

    /// <summary>Rolls the active segment now if it holds data (admin/test hook).</summary>
    public void Roll()
    {
        lock (_lock)
        {
            if (_closed || _active.IsEmpty) return;
            RollLocked(_time.GetUtcNow().ToUnixTimeMilliseconds(), "requested");
        }
    }

    // =============================================================================================
    // Read

    /// <summary>
    /// Reads whole batches starting with the batch that contains <paramref name="fetchOffset"/> (clients skip
    /// the records before it), up to <paramref name="maxBytes"/>; if the first batch alone is larger it is
    /// returned whole when <paramref name="minOneBatch"/> (KIP-74), else nothing. Stays within one segment.
    /// OFFSET_OUT_OF_RANGE when fetchOffset &lt; log start offset or &gt; high-water mark; empty records at the
    /// high-water mark. The payload copies straight from the segment file when serialized.
    /// </summary>
    public ReadResult Read(long fetchOffset, int maxBytes, bool minOneBatch = true)
    {
        for (int attempt = 0; ; attempt++)
        {
            long hwm = Volatile.Read(ref _nextOffset);
            long logStart = Volatile.Read(ref _logStartOffset);
            if (_closed) return new ReadResult(ErrorCode.UnknownTopicOrPartition, RecordsPayload.Empty, hwm, logStart);
            if (fetchOffset < logStart || fetchOffset > hwm)
                return new ReadResult(ErrorCode.OffsetOutOfRange, RecordsPayload.Empty, hwm, logStart);
            if (fetchOffset == hwm || (maxBytes <= 0 && !minOneBatch))
                return new ReadResult(ErrorCode.None, RecordsPayload.Empty, hwm, logStart);
            var segs = Volatile.Read(ref _segments);
            try
            {
                if (fetchOffset < segs[0].BaseOffset) // retention removed the segment after we read the log start offset
                    return new ReadResult(ErrorCode.OffsetOutOfRange, RecordsPayload.Empty, hwm, LogStartOffset);
                for (int i = FindSegment(segs, fetchOffset); i < segs.Length; i++)
                {
                    var payload = segs[i].Read(fetchOffset, maxBytes, minOneBatch);
                    if (payload is not null) return new ReadResult(ErrorCode.None, payload, hwm, logStart);
                }
                return new ReadResult(ErrorCode.None, RecordsPayload.Empty, hwm, logStart);
            }
            catch (ObjectDisposedException) when (attempt < 3)
            {
                // The segment was deleted and its handle closed under us: look again.
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                _logger.LogError(e, "{Partition}: read at offset {Offset} failed", _name, fetchOffset);
                return new ReadResult(ErrorCode.KafkaStorageError, RecordsPayload.Empty, hwm, logStart);
            }
        }
    }

    /// <summary>Index of the last segment whose base offset is &lt;= offset (0 if none).</summary>
    private static int FindSegment(LogSegment[] segs, long offset)
    {
        int lo = 0, hi = segs.Length - 1, found = 0;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (segs[mid].BaseOffset <= offset) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    // =============================================================================================
    // Long poll

    // Registration is before the waiter's HWM check and the wake is after the HWM write, both under the list's
    // lock, so a wait never misses an append. Waiters are woken in place: Wake only queues their continuation.
    internal void AddWaiter(AppendWaiter waiter)
    {
        lock (_waiters) _waiters.Add(waiter);
    }

    internal void RemoveWaiter(AppendWaiter waiter)
    {
        lock (_waiters) _waiters.Remove(waiter);
    }

    private void SignalAppend()
    {
        lock (_waiters)
            foreach (var waiter in _waiters) waiter.Wake();
    }

    // =============================================================================================
    // ListOffsets

    public const long LatestTimestamp = -1;
    public const long EarliestTimestamp = -2;
    public const long MaxTimestampQuery = -3;
    public const long EarliestLocalTimestamp = -4;
    public const long LatestTieredTimestamp = -5;

    /// <summary>
    /// ListOffsets for one partition: -2 (earliest) and -4 (earliest local) give (log start offset, -1);
    /// -1 (latest) gives (high-water mark, -1); -5 (latest tiered, no tiering) gives (-1, -1); -3 gives
    /// <see cref="GetMaxTimestamp"/>; a timestamp &gt;= 0 gives <see cref="FindOffsetByTimestamp"/>.
    /// </summary>
    public OffsetAndTimestamp ListOffset(long timestamp) => timestamp switch
    {
        EarliestTimestamp or EarliestLocalTimestamp => new OffsetAndTimestamp(LogStartOffset, -1),
        LatestTimestamp => new OffsetAndTimestamp(HighWatermark, -1),
        MaxTimestampQuery => GetMaxTimestamp(),
        >= 0 => FindOffsetByTimestamp(timestamp),
        _ => OffsetAndTimestamp.None,
    };

    /// <summary>
    /// The first offset (&gt;= log start offset) whose record timestamp is &gt;= <paramref name="timestamp"/>, with
    /// that record's timestamp; (-1, -1) when no record is that new. Uses the time index to find where to start,
    /// scans batch headers from there and decodes only the matching batch. (Compressed batches whose codec
    /// fails yield the batch's first offset and its max timestamp.)
    /// </summary>
    public OffsetAndTimestamp FindOffsetByTimestamp(long timestamp)
    {
        for (int attempt = 0; ; attempt++)
        {
            long logStart = LogStartOffset;
            var segs = Volatile.Read(ref _segments);
            try
            {
                foreach (var seg in segs)
                {
                    if (seg.NextOffset <= logStart || seg.MaxTimestamp < timestamp) continue;
                    var r = seg.FindByTimestamp(timestamp, logStart, exact: false);
                    if (!r.IsNone) return r;
                }
                return OffsetAndTimestamp.None;
            }
            catch (ObjectDisposedException) when (attempt < 3) { }
        }
    }

    /// <summary>
    /// The record with the largest timestamp: its offset and timestamp (first such record). The segment and
    /// batch come from the in-memory max-timestamp tracking, then the batch is decoded to find the exact record;
    /// if it cannot be decoded the batch's last offset is returned (what Kafka did before 3.7 for v2 batches).
    /// (-1, -1) for an empty log.
    /// </summary>
    public OffsetAndTimestamp GetMaxTimestamp()
    {
        for (int attempt = 0; ; attempt++)
        {
            LogSegment? best = null;
            long bestTs = -1, bestOffset = -1;
            long logStart;
            lock (_lock)
            {
                logStart = _logStartOffset;
                foreach (var seg in _segments)
                {
                    long ts = seg.MaxTimestamp;
                    if (ts > bestTs && seg.NextOffset > logStart) { best = seg; bestTs = ts; bestOffset = seg.OffsetOfMaxTimestamp; }
                }
            }
            if (best is null || bestTs < 0) return OffsetAndTimestamp.None;
            try
            {
                var r = best.FindByTimestamp(bestTs, logStart, exact: true, startOffsetHint: bestOffset);
                return r.IsNone ? new OffsetAndTimestamp(Math.Max(bestOffset, logStart), bestTs) : r;
            }
            catch (ObjectDisposedException) when (attempt < 3) { }
        }
    }

    // =============================================================================================
    // Flush

    /// <summary>
    /// Ensures the record at <paramref name="upToOffset"/> (and everything before it) is fsynced. Returns at once
    /// when it already is; concurrent callers share one fsync. Offsets beyond the log end are clamped.
    /// </summary>
    public ValueTask FlushAsync(long upToOffset, CancellationToken cancellationToken = default)
    {
        long target = Math.Min(upToOffset, Volatile.Read(ref _nextOffset) - 1);
        if (Volatile.Read(ref _durableOffset) > target) return ValueTask.CompletedTask;
        return FlushSlowAsync(target, cancellationToken);
    }

    private async ValueTask FlushSlowAsync(long target, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task t;
            lock (_flushGate)
            {
                if (Volatile.Read(ref _durableOffset) > target) return;
                t = _flushTask ??= Task.Run(FlushCore);
            }
            await t.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Synchronous fsync of everything appended so far.</summary>
    public void Flush()
    {
        long target = Volatile.Read(ref _nextOffset) - 1;
        if (Volatile.Read(ref _durableOffset) > target) return;
        FlushSlowAsync(target, CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    private void FlushCore()
    {
        try
        {
            long target = Volatile.Read(ref _nextOffset);
            long messages = Interlocked.Read(ref _unflushedMessages);
            long durable = Volatile.Read(ref _durableOffset);
            var segs = Volatile.Read(ref _segments);
            for (int i = segs.Length - 1; i >= 0; i--)
            {
                var seg = segs[i];
                if (seg.NextOffset <= durable && i < segs.Length - 1) break;
                // Only record data must be durable: indexes are fsynced on roll and close, and rebuilt by recovery after a crash.
                try { seg.Flush(includeIndexes: false); }
                catch (ObjectDisposedException) { }
            }
            long cur;
            do { cur = Volatile.Read(ref _durableOffset); }
            while (target > cur && Interlocked.CompareExchange(ref _durableOffset, target, cur) != cur);
            Interlocked.Add(ref _unflushedMessages, -messages);
            Volatile.Write(ref _lastFlushMs, _time.GetUtcNow().ToUnixTimeMilliseconds());
        }
        catch (IOException e)
        {
            _logger.LogError(e, "{Partition}: fsync failed", _name);
            throw;
        }
        finally
        {
            lock (_flushGate) _flushTask = null;
        }
    }

    private void FlushInBackground(long upToOffset)
    {
        var t = FlushAsync(upToOffset);
        if (t.IsCompleted) return;
        _ = t.AsTask().ContinueWith(static (task, state) =>
        {
            var (log, name) = ((ILogger, string))state!;
            log.LogError(task.Exception, "{Partition}: background flush failed", name);
        }, (_logger, _name), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>flush.ms: starts a flush when there is unflushed data and the last flush is older than flush.ms.</summary>
    public bool FlushIfDue(DateTimeOffset now)
    {
        var cfg = _config;
        if (_closed || cfg.FlushMs == long.MaxValue) return false;
        if (DurableOffset >= HighWatermark) return false;
        if (now.ToUnixTimeMilliseconds() - Volatile.Read(ref _lastFlushMs) < cfg.FlushMs) return false;
        FlushInBackground(HighWatermark - 1);
        return true;
    }

    // =============================================================================================
    // Log start offset, DeleteRecords, retention

    /// <summary>
    /// DeleteRecords: moves the log start offset up to <paramref name="beforeOffset"/> (-1 = the high-water mark)
    /// and deletes the segments entirely below it. OFFSET_OUT_OF_RANGE when beforeOffset is past the high-water
    /// mark or negative. Returns the new low watermark (unchanged when beforeOffset is below it).
    /// </summary>
    public DeleteRecordsResult DeleteRecords(long beforeOffset)
    {
        if (_closed) return new DeleteRecordsResult(ErrorCode.UnknownTopicOrPartition, -1);
        List<LogSegment>? deleted;
        long newStart;
        lock (_lock)
        {
            long hwm = _nextOffset;
            if (beforeOffset == -1) beforeOffset = hwm;
            if (beforeOffset < 0 || beforeOffset > hwm)
                return new DeleteRecordsResult(ErrorCode.OffsetOutOfRange, _logStartOffset);
            if (beforeOffset > _logStartOffset) Volatile.Write(ref _logStartOffset, beforeOffset);
            newStart = _logStartOffset;
            deleted = RemoveSegmentsBelowLocked(newStart, 0);
            _producers.RemoveBefore(newStart);
        }
        WriteLogStartCheckpoint();
        DeleteSegments(deleted, "log start offset moved by DeleteRecords");
        return new DeleteRecordsResult(ErrorCode.None, newStart);
    }

    /// <summary>Removes leading non-active segments that end at or before <paramref name="logStart"/>, plus the first <paramref name="atLeast"/>.</summary>
    private List<LogSegment>? RemoveSegmentsBelowLocked(long logStart, int atLeast)
    {
        var segs = _segments;
        int k = atLeast;
        while (k < segs.Length - 1 && segs[k].NextOffset <= logStart) k++;
        if (k == 0) return null;
        var removed = new List<LogSegment>(k);
        for (int i = 0; i < k; i++) removed.Add(segs[i]);
        long first = segs[k].BaseOffset;
        if (first > _logStartOffset) Volatile.Write(ref _logStartOffset, first);
        Volatile.Write(ref _segments, segs[k..]);
        return removed;
    }

    private void DeleteSegments(List<LogSegment>? segments, string reason)
    {
        if (segments is null) return;
        var delay = TimeSpan.FromMilliseconds(Math.Min(_config.FileDeleteDelayMs, int.MaxValue));
        foreach (var seg in segments)
        {
            long size = seg.Size;
            seg.DeleteFiles();
            _closer.Schedule(seg, delay);
            _logger.LogInformation("{Partition}: deleted segment {Base} (offsets {Base}..{Last}, {Size} bytes): {Reason}",
                _name, seg.BaseOffset, seg.BaseOffset, seg.NextOffset - 1, size, reason);
        }
    }

    /// <summary>
    /// Applies retention.ms (by each segment's largest timestamp) and retention.bytes to whole old segments
    /// (for cleanup.policy including delete), and removes segments below the log start offset. The active
    /// segment is rolled first if it has expired by time. Advances the log start offset.
    /// </summary>
    public RetentionResult ApplyRetention(DateTimeOffset now)
    {
        if (_closed) return new RetentionResult(0, 0, LogStartOffset);
        var cfg = _config;
        long nowMs = now.ToUnixTimeMilliseconds();
        List<LogSegment>? deleted;
        string reason;
        long logStart;
        lock (_lock)
        {
            var segs = _segments;
            int k = 0;
            while (k < segs.Length - 1 && segs[k].NextOffset <= _logStartOffset) k++;
            reason = "below the log start offset";
            if (cfg.DeleteEnabled && cfg.RetentionMs >= 0)
            {
                int before = k;
                while (k < segs.Length - 1 && nowMs - segs[k].LargestTimestampForRetention() > cfg.RetentionMs) k++;
                if (k == segs.Length - 1 && !_active.IsEmpty && nowMs - _active.LargestTimestampForRetention() > cfg.RetentionMs)
                {
                    RollLocked(nowMs, "active segment past retention.ms");
                    segs = _segments;
                    k = segs.Length - 1;
                }
                if (k > before) reason = $"retention.ms {cfg.RetentionMs} exceeded";
            }
            if (cfg.DeleteEnabled && cfg.RetentionBytes >= 0)
            {
                long total = 0;
                foreach (var s in segs) total += s.Size;
                long diff = total - cfg.RetentionBytes;
                for (int i = 0; i < k; i++) diff -= segs[i].Size;
                int before = k;
                while (k < segs.Length - 1 && diff - segs[k].Size >= 0) { diff -= segs[k].Size; k++; }
                if (k > before) reason = $"retention.bytes {cfg.RetentionBytes} exceeded";
            }
            deleted = k > 0 ? RemoveSegmentsBelowLocked(long.MinValue, k) : null;
            if (deleted is not null) _producers.RemoveBefore(_logStartOffset);
            logStart = _logStartOffset;
        }
        if (deleted is null) return new RetentionResult(0, 0, logStart);
        long bytes = 0;
        foreach (var s in deleted) bytes += s.Size;
        WriteLogStartCheckpoint();
        DeleteSegments(deleted, reason);
        return new RetentionResult(deleted.Count, bytes, logStart);
    }

    // =============================================================================================
    // Close

    /// <summary>Clean close: fsync everything, write the producer-state snapshot and the clean-shutdown marker.</summary>
    public void Dispose() => Close();

    public void Close()
    {
        LogSegment[] segs;
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            segs = _segments;
            _active.Seal();
        }
        SignalAppend();
        Task? pending;
        lock (_flushGate) pending = _flushTask;
        try { pending?.Wait(); }
        catch (AggregateException) { }
        try
        {
            foreach (var s in segs) s.Flush(includeIndexes: true);
            Volatile.Write(ref _durableOffset, _nextOffset);
            FileIO.WriteAtomic(Path.Combine(Directory, ProducerSnapshotFile), _producers.Serialize(_nextOffset));
            WriteLogStartCheckpoint();
            FileIO.WriteAtomic(Path.Combine(Directory, CleanShutdownFile), "clean"u8);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _logger.LogError(e, "{Partition}: clean shutdown failed; the next start will recover", _name);
        }
        foreach (var s in segs) s.CloseHandles();
        if (_ownsCloser) _closer.Dispose();
    }

    /// <summary>Closes the log and removes its directory (DeleteTopic). In-flight reads keep working until file.delete.delay.ms.</summary>
    internal void CloseAndDelete()
    {
        LogSegment[] segs;
        lock (_lock)
        {
            _closed = true;
            segs = _segments;
        }
        SignalAppend();
        var delay = TimeSpan.FromMilliseconds(Math.Min(_config.FileDeleteDelayMs, int.MaxValue));
        foreach (var s in segs) _closer.Schedule(s, delay);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(e, "{Partition}: could not remove directory {Directory}", _name, Directory);
        }
        _logger.LogInformation("{Partition}: deleted", _name);
    }

    /// <summary>Test hook: drop everything as a crash would (no flush, no snapshot, no clean-shutdown marker).</summary>
    internal void SimulateCrash()
    {
        LogSegment[] segs;
        lock (_lock)
        {
            _closed = true;
            segs = _segments;
        }
        SignalAppend();
        foreach (var s in segs) s.CloseHandles();
        if (_ownsCloser) _closer.Dispose();
    }

    public override string ToString() => _name;
}
