using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>
/// One segment of a partition log: the .log file (batches back to back, exactly as produced, with the
/// assigned base offset), a sparse .index and a .timeindex. Appends come from one writer at a time
/// (the partition's append lock); reads are lock-free and only look at bytes below <see cref="Size"/>,
/// which is published after the data is written.
/// </summary>
internal sealed class LogSegment
{
    public const string LogSuffix = ".log";
    public const string IndexSuffix = ".index";
    public const string TimeIndexSuffix = ".timeindex";

    public readonly long BaseOffset;
    public readonly string LogPath;
    public readonly string IndexPath;
    public readonly string TimeIndexPath;
    public readonly SafeFileHandle Log;

    private readonly ILogger _logger;
    private readonly string _name;
    private readonly Lock _loadLock = new();

    private long _size;
    private long _nextOffset;
    private OffsetIndex? _index;
    private TimeIndex? _timeIndex;
    private SafeFileHandle? _indexFile;
    private SafeFileHandle? _timeIndexFile;
    private int _indexPersisted;
    private int _timeIndexPersisted;
    private long _maxTimestamp = -1;
    private long _offsetOfMaxTimestamp = -1;
    private int _bytesSinceLastIndexEntry;
    private long _rollBaseTimeMs = -1;
    private int _closed;

    /// <summary>index.interval.bytes used when indexes are rebuilt lazily (kept current by the partition).</summary>
    public int IndexInterval = 4096;

    private LogSegment(string dir, long baseOffset, SafeFileHandle log, ILogger logger, string name)
    {
        BaseOffset = baseOffset;
        LogPath = PathFor(dir, baseOffset, LogSuffix);
        IndexPath = PathFor(dir, baseOffset, IndexSuffix);
        TimeIndexPath = PathFor(dir, baseOffset, TimeIndexSuffix);
        Log = log;
        _logger = logger;
        _name = name;
        _nextOffset = baseOffset;
    }

    public static string PathFor(string dir, long baseOffset, string suffix) =>
        Path.Combine(dir, baseOffset.ToString("D20", CultureInfo.InvariantCulture) + suffix);

    public static bool TryParseBaseOffset(string fileName, string suffix, out long baseOffset)
    {
        baseOffset = -1;
        if (!fileName.EndsWith(suffix, StringComparison.Ordinal)) return false;
        var stem = fileName.AsSpan(0, fileName.Length - suffix.Length);
        return stem.Length == 20 && long.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out baseOffset);
    }

    /// <summary>Committed bytes: everything below is whole batches, readable.</summary>
    public long Size => Volatile.Read(ref _size);
    /// <summary>The offset after the last batch (== <see cref="BaseOffset"/> when empty).</summary>
    public long NextOffset => Volatile.Read(ref _nextOffset);
    public bool IsEmpty => Size == 0;
    public bool IsClosed => Volatile.Read(ref _closed) != 0;
    /// <summary>Largest batch max timestamp in the segment (-1 if none). Written under the partition lock.</summary>
    public long MaxTimestamp => Volatile.Read(ref _maxTimestamp);
    /// <summary>Last offset of the first batch holding <see cref="MaxTimestamp"/>.</summary>
    public long OffsetOfMaxTimestamp => Volatile.Read(ref _offsetOfMaxTimestamp);
    /// <summary>When the segment started to fill (for segment.ms); -1 while empty.</summary>
    public long RollBaseTimeMs => _rollBaseTimeMs;

    public string DisplayName => $"{_name} segment {BaseOffset}";

    // ------------------------------------------------------------------------------------------
    // Creation and recovery

    public static LogSegment Create(string dir, long baseOffset, ILogger logger, string name)
    {
        var log = FileIO.OpenReadWrite(PathFor(dir, baseOffset, LogSuffix), FileMode.Create);
        var seg = new LogSegment(dir, baseOffset, log, logger, name)
        {
            _index = new OffsetIndex(),
            _timeIndex = new TimeIndex(),
        };
        seg._indexFile = FileIO.OpenReadWrite(seg.IndexPath, FileMode.Create);
        seg._timeIndexFile = FileIO.OpenReadWrite(seg.TimeIndexPath, FileMode.Create);
        return seg;
    }

    public enum OpenOutcome { Clean, IndexRebuilt, Truncated }

    /// <summary>
    /// Opens an existing segment. With <paramref name="fullRecovery"/> (the active segment after an unclean
    /// shutdown) every batch is checked (structure, contiguous offsets, CRC) and the file is truncated at the
    /// first bad one, and the indexes are rebuilt from the scan. Otherwise the indexes get a sanity check and
    /// the batches after the last index entry a structural walk; a damaged index is rebuilt and a damaged tail
    /// triggers the full recovery. The active segment's indexes are loaded; others load lazily.
    /// </summary>
    public static LogSegment Open(string dir, long baseOffset, bool active, bool fullRecovery, int indexInterval,
        ILogger logger, string name, long nowMs, out OpenOutcome outcome)
    {
        var log = FileIO.OpenReadWrite(PathFor(dir, baseOffset, LogSuffix), FileMode.Open);
        var seg = new LogSegment(dir, baseOffset, log, logger, name) { IndexInterval = indexInterval };
        try
        {
            seg._size = RandomAccess.GetLength(log);
            outcome = OpenOutcome.Clean;
            if (fullRecovery)
            {
                outcome = seg.Recover(verifyCrc: true, indexInterval, "unclean shutdown");
            }
            else
            {
                var check = seg.QuickCheck(out var problem);
                if (check == QuickCheckResult.IndexDamaged)
                    outcome = seg.Recover(verifyCrc: false, indexInterval, problem!);
                else if (check == QuickCheckResult.TailDamaged)
                    outcome = seg.Recover(verifyCrc: true, indexInterval, problem!);
            }
            if (active)
            {
                if (seg.EnsureOffsetIndex() is null || seg.EnsureTimeIndex() is null)
                    throw new InvalidOperationException("index not loaded");
                seg._indexFile = FileIO.OpenReadWrite(seg.IndexPath, FileMode.OpenOrCreate);
                seg._timeIndexFile = FileIO.OpenReadWrite(seg.TimeIndexPath, FileMode.OpenOrCreate);
                seg._indexPersisted = seg._index!.Count;
                seg._timeIndexPersisted = seg._timeIndex!.Count;
                // Drop index bytes past what we loaded (e.g. a partial trailing entry).
                RandomAccess.SetLength(seg._indexFile, (long)seg._indexPersisted * OffsetIndex.EntrySize);
                RandomAccess.SetLength(seg._timeIndexFile, (long)seg._timeIndexPersisted * TimeIndex.EntrySize);
                if (seg._size > 0) seg._rollBaseTimeMs = seg.FirstBatchTimestampOr(nowMs);
            }
            return seg;
        }
        catch
        {
            seg.CloseHandles();
            throw;
        }
    }

    private enum QuickCheckResult { Ok, IndexDamaged, TailDamaged }

    private QuickCheckResult QuickCheck(out string? problem)
    {
        problem = null;
        long size = _size;
        // Offset index: size a multiple of 8, last entry inside the file.
        long idxLen = File.Exists(IndexPath) ? new FileInfo(IndexPath).Length : -1;
        long tIdxLen = File.Exists(TimeIndexPath) ? new FileInfo(TimeIndexPath).Length : -1;
        if (idxLen < 0 || tIdxLen < 0)
        {
            problem = idxLen < 0 ? "offset index missing" : "time index missing";
            return QuickCheckResult.IndexDamaged;
        }
        if (idxLen % OffsetIndex.EntrySize != 0 || tIdxLen % TimeIndex.EntrySize != 0)
        {
            problem = "index file has a partial entry";
            return QuickCheckResult.IndexDamaged;
        }
        int lastRel = -1, lastPos = -1;
        Span<byte> tmp = stackalloc byte[TimeIndex.EntrySize];
        if (idxLen > 0)
        {
            using var h = File.OpenHandle(IndexPath, FileMode.Open, FileAccess.Read, FileIO.Share);
            if (FileIO.ReadFully(h, tmp[..8], idxLen - 8) != 8) { problem = "offset index unreadable"; return QuickCheckResult.IndexDamaged; }
            lastRel = BinaryPrimitives.ReadInt32BigEndian(tmp);
            lastPos = BinaryPrimitives.ReadInt32BigEndian(tmp[4..]);
            if (lastRel < 0 || lastPos < 0 || lastPos >= size)
            {
                problem = $"offset index entry points past the end of the log (position {lastPos}, log size {size})";
                return QuickCheckResult.IndexDamaged;
            }
        }
        long timeLastTs = -1;
        int timeLastRel = -1;
        if (tIdxLen > 0)
        {
            using var h = File.OpenHandle(TimeIndexPath, FileMode.Open, FileAccess.Read, FileIO.Share);
            if (FileIO.ReadFully(h, tmp, tIdxLen - TimeIndex.EntrySize) != TimeIndex.EntrySize) { problem = "time index unreadable"; return QuickCheckResult.IndexDamaged; }
            timeLastTs = BinaryPrimitives.ReadInt64BigEndian(tmp);
            timeLastRel = BinaryPrimitives.ReadInt32BigEndian(tmp[8..]);
            if (timeLastRel < 0 || timeLastTs < 0) { problem = "time index entry invalid"; return QuickCheckResult.IndexDamaged; }
        }

        // Walk the batches after the last index entry: they must chain exactly to the end of the file.
        long pos = lastPos >= 0 ? lastPos : 0;
        long expected = lastPos >= 0 ? BaseOffset + lastRel : BaseOffset;
        long maxTs = -1, offMax = -1;
        using (var reader = new ChunkReader(Log, size, 64 * 1024))
        {
            bool first = true;
            while (pos < size)
            {
                var span = reader.Get(pos, RecordBatchHeader.Size);
                if (span.IsEmpty || !RecordBatchHeader.TryRead(span, out var hdr) || !IsSane(hdr, size - pos)
                    || hdr.BaseOffset != expected)
                {
                    if (first && lastPos >= 0)
                    {
                        problem = $"offset index entry does not point at the batch it names (position {lastPos})";
                        return QuickCheckResult.IndexDamaged;
                    }
                    problem = $"corrupt or torn batch at position {pos}";
                    return QuickCheckResult.TailDamaged;
                }
                first = false;
                if (hdr.MaxTimestamp > maxTs) { maxTs = hdr.MaxTimestamp; offMax = hdr.LastOffset; }
                pos += hdr.TotalSize;
                expected = hdr.NextOffset;
            }
        }
        if (timeLastRel >= 0 && BaseOffset + timeLastRel >= expected)
        {
            problem = "time index entry points past the last offset";
            return QuickCheckResult.IndexDamaged;
        }
        _nextOffset = expected;
        if (timeLastTs >= maxTs && timeLastTs >= 0) { _maxTimestamp = timeLastTs; _offsetOfMaxTimestamp = BaseOffset + timeLastRel; }
        else { _maxTimestamp = maxTs; _offsetOfMaxTimestamp = offMax; }
        _bytesSinceLastIndexEntry = (int)(size - (lastPos >= 0 ? lastPos : 0));
        return QuickCheckResult.Ok;
    }

    private static bool IsSane(in RecordBatchHeader h, long available) =>
        h.Magic == 2
        && h.BatchLength >= RecordBatchHeader.Size - RecordBatchHeader.LogOverhead
        && h.TotalSize <= available
        && h.LastOffsetDelta >= 0
        && h.BaseOffset >= 0;

    private sealed class ScanResult
    {
        public OffsetIndex Index = new();
        public TimeIndex TimeIndex = new();
        public long ValidEnd;
        public long NextOffset;
        public long MaxTimestamp = -1;
        public long OffsetOfMaxTimestamp = -1;
        public int BytesSinceLastIndexEntry;
        public string? Problem;
        public int Batches;
    }

    /// <summary>
    /// Walks every batch from the start of the file, checking structure and offsets (and the CRC when asked),
    /// building indexes with the same rule as the append path. Stops at the first bad batch.
    /// </summary>
    private ScanResult Scan(bool verifyCrc, int indexInterval, long size)
    {
        var r = new ScanResult { NextOffset = BaseOffset };
        long pos = 0;
        using var reader = new ChunkReader(Log, size);
        while (pos < size)
        {
            var span = reader.Get(pos, RecordBatchHeader.Size);
            if (span.IsEmpty) { r.Problem = $"torn batch header at position {pos}"; break; }
            if (!RecordBatchHeader.TryRead(span, out var h) || !IsSane(h, size - pos))
            {
                r.Problem = $"invalid batch header at position {pos}"; break;
            }
            if (h.BaseOffset != r.NextOffset)
            {
                r.Problem = $"batch at position {pos} has base offset {h.BaseOffset}, expected {r.NextOffset}"; break;
            }
            if (verifyCrc)
            {
                var whole = reader.Get(pos, h.TotalSize);
                if (whole.IsEmpty || !RecordBatchHeader.IsCrcValid(whole))
                {
                    r.Problem = $"CRC mismatch in batch at position {pos} (offset {h.BaseOffset})"; break;
                }
            }
            Track(r.Index, r.TimeIndex, BaseOffset, ref r.BytesSinceLastIndexEntry, ref r.MaxTimestamp, ref r.OffsetOfMaxTimestamp,
                h.BaseOffset, h.LastOffset, h.MaxTimestamp, pos, h.TotalSize, indexInterval);
            pos += h.TotalSize;
            r.NextOffset = h.NextOffset;
            r.Batches++;
        }
        r.ValidEnd = pos;
        return r;
    }

    /// <summary>The per-batch index rule shared by appends and rebuilds.</summary>
    private static void Track(OffsetIndex index, TimeIndex time, long segBase, ref int bytesSince, ref long maxTs, ref long offMax,
        long baseOffset, long lastOffset, long batchMaxTs, long position, int size, int interval)
    {
        if (batchMaxTs > maxTs) { maxTs = batchMaxTs; offMax = lastOffset; }
        if (bytesSince >= interval)
        {
            index.Append((int)(baseOffset - segBase), (int)position);
            if (maxTs >= 0) time.MaybeAppend(maxTs, (int)(offMax - segBase));
            bytesSince = 0;
        }
        bytesSince += size;
    }

    private OpenOutcome Recover(bool verifyCrc, int indexInterval, string reason)
    {
        long size = _size;
        var r = Scan(verifyCrc, indexInterval, size);
        var outcome = OpenOutcome.IndexRebuilt;
        if (r.ValidEnd < size)
        {
            _logger.LogWarning("{Segment}: truncating log from {Size} to {ValidEnd} bytes ({Problem}); next offset {Next}",
                DisplayName, size, r.ValidEnd, r.Problem, r.NextOffset);
            RandomAccess.SetLength(Log, r.ValidEnd);
            RandomAccess.FlushToDisk(Log);
            _size = r.ValidEnd;
            outcome = OpenOutcome.Truncated;
        }
        ApplyScan(r);
        bool rewrote = WriteIndexFileIfDifferent(IndexPath, r.Index.Serialize());
        rewrote |= WriteIndexFileIfDifferent(TimeIndexPath, r.TimeIndex.Serialize());
        if (rewrote)
            _logger.LogWarning("{Segment}: rebuilt offset and time indexes from {Batches} batches ({Reason})", DisplayName, r.Batches, reason);
        else if (outcome == OpenOutcome.IndexRebuilt)
            outcome = OpenOutcome.Clean;
        return outcome;
    }

    private void ApplyScan(ScanResult r)
    {
        _index = r.Index;
        _timeIndex = r.TimeIndex;
        _nextOffset = r.NextOffset;
        _maxTimestamp = r.MaxTimestamp;
        _offsetOfMaxTimestamp = r.OffsetOfMaxTimestamp;
        _bytesSinceLastIndexEntry = r.BytesSinceLastIndexEntry;
    }

    private static bool WriteIndexFileIfDifferent(string path, byte[] content)
    {
        var existing = FileIO.TryReadAll(path);
        if (existing is not null && existing.AsSpan().SequenceEqual(content)) return false;
        using var h = FileIO.OpenReadWrite(path, FileMode.Create);
        RandomAccess.Write(h, content, 0);
        RandomAccess.FlushToDisk(h);
        return true;
    }

    private long FirstBatchTimestampOr(long nowMs)
    {
        Span<byte> hdr = stackalloc byte[RecordBatchHeader.Size];
        if (FileIO.ReadFully(Log, hdr, 0) == hdr.Length && RecordBatchHeader.TryRead(hdr, out var h)
            && h.MaxTimestamp >= 0 && h.MaxTimestamp <= nowMs)
            return h.MaxTimestamp;
        return nowMs;
    }

    // ------------------------------------------------------------------------------------------
    // Lazy index loading (inactive segments)

    /// <summary>The offset index, loading (and if damaged rebuilding) it from disk on first use.</summary>
    public OffsetIndex? EnsureOffsetIndex()
    {
        var idx = Volatile.Read(ref _index);
        if (idx is not null) return idx;
        lock (_loadLock)
        {
            if (_index is not null) return _index;
            long size = Size;
            var bytes = FileIO.TryReadAll(IndexPath);
            var parsed = bytes is null ? null : OffsetIndex.TryParse(bytes, size, NextOffset - BaseOffset - 1);
            if (parsed is null)
            {
                RebuildLazily(size, bytes is null ? "missing" : "damaged");
                return _index;
            }
            Volatile.Write(ref _index, parsed);
            return parsed;
        }
    }

    public TimeIndex? EnsureTimeIndex()
    {
        var idx = Volatile.Read(ref _timeIndex);
        if (idx is not null) return idx;
        lock (_loadLock)
        {
            if (_timeIndex is not null) return _timeIndex;
            var bytes = FileIO.TryReadAll(TimeIndexPath);
            var parsed = bytes is null ? null : TimeIndex.TryParse(bytes, Math.Max(0, NextOffset - BaseOffset - 1));
            if (parsed is null)
            {
                RebuildLazily(Size, bytes is null ? "missing" : "damaged");
                return _timeIndex;
            }
            Volatile.Write(ref _timeIndex, parsed);
            return parsed;
        }
    }

    private void RebuildLazily(long size, string what)
    {
        // Called for a segment already validated at open: structure problems here are not truncated.
        var r = Scan(verifyCrc: false, IndexInterval, size);
        if (r.Problem is not null)
            _logger.LogError("{Segment}: batch scan stopped early while rebuilding indexes: {Problem}", DisplayName, r.Problem);
        try
        {
            WriteIndexFileIfDifferent(IndexPath, r.Index.Serialize());
            WriteIndexFileIfDifferent(TimeIndexPath, r.TimeIndex.Serialize());
        }
        catch (IOException e)
        {
            _logger.LogWarning(e, "{Segment}: could not write rebuilt index files", DisplayName);
        }
        _logger.LogWarning("{Segment}: index {What}, rebuilt from {Batches} batches", DisplayName, what, r.Batches);
        Volatile.Write(ref _timeIndex, r.TimeIndex);
        Volatile.Write(ref _index, r.Index);
    }

    // ------------------------------------------------------------------------------------------
    // Append (under the partition's append lock)

    /// <summary>
    /// Writes the already offset-stamped batches at the end of the file and indexes them. The new size and
    /// next offset are published last, so readers never see a partially written batch.
    /// </summary>
    public void Append(ReadOnlySpan<byte> data, ReadOnlySpan<BatchInfo> batches, int indexInterval, long nowMs)
    {
        long pos = _size;
        RandomAccess.Write(Log, data, pos);
        var index = _index!;
        var time = _timeIndex!;
        for (int i = 0; i < batches.Length; i++)
        {
            ref readonly var b = ref batches[i];
            Track(index, time, BaseOffset, ref _bytesSinceLastIndexEntry, ref _maxTimestamp, ref _offsetOfMaxTimestamp,
                b.BaseOffset, b.LastOffset, b.MaxTimestamp, pos + b.Position, b.Size, indexInterval);
        }
        PersistIndexTail();
        if (pos == 0) _rollBaseTimeMs = nowMs;
        Volatile.Write(ref _size, pos + data.Length);
        Volatile.Write(ref _nextOffset, batches[^1].LastOffset + 1);
    }

    private void PersistIndexTail()
    {
        var index = _index!;
        var time = _timeIndex!;
        try
        {
            int n = index.Count;
            if (n > _indexPersisted && _indexFile is not null)
            {
                int bytes = (n - _indexPersisted) * OffsetIndex.EntrySize;
                byte[]? rented = bytes > 512 ? ArrayPool<byte>.Shared.Rent(bytes) : null;
                Span<byte> buf = rented ?? stackalloc byte[512];
                int w = index.SerializeInto(buf, _indexPersisted);
                RandomAccess.Write(_indexFile, buf[..w], (long)_indexPersisted * OffsetIndex.EntrySize);
                _indexPersisted = n;
                if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
            }
            int t = time.Count;
            if (t > _timeIndexPersisted && _timeIndexFile is not null)
            {
                int bytes = (t - _timeIndexPersisted) * TimeIndex.EntrySize;
                byte[]? rented = bytes > 516 ? ArrayPool<byte>.Shared.Rent(bytes) : null;
                Span<byte> buf = rented ?? stackalloc byte[516];
                int w = time.SerializeInto(buf, _timeIndexPersisted);
                RandomAccess.Write(_timeIndexFile, buf[..w], (long)_timeIndexPersisted * TimeIndex.EntrySize);
                _timeIndexPersisted = t;
                if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
            }
        }
        catch (IOException e)
        {
            // The index is an optimization: it is validated and rebuilt on recovery.
            _logger.LogWarning(e, "{Segment}: failed to write index entries", DisplayName);
        }
    }

    /// <summary>Called when this segment stops being the active one (roll or close): final time index entry.</summary>
    public void Seal()
    {
        var time = _timeIndex;
        if (time is not null && _maxTimestamp >= 0 && time.MaybeAppend(_maxTimestamp, (int)(_offsetOfMaxTimestamp - BaseOffset)))
            PersistIndexTail();
    }

    /// <summary>fsync the log (and index files while they are open for appends).</summary>
    public void Flush(bool includeIndexes)
    {
        if (IsClosed) return;
        RandomAccess.FlushToDisk(Log);
        if (includeIndexes)
        {
            var i = _indexFile; var t = _timeIndexFile;
            if (i is not null && !i.IsClosed) RandomAccess.FlushToDisk(i);
            if (t is not null && !t.IsClosed) RandomAccess.FlushToDisk(t);
        }
    }

    /// <summary>After a roll: fsync everything and release the index write handles.</summary>
    public void FlushAndReleaseIndexFiles()
    {
        Flush(includeIndexes: true);
        var i = Interlocked.Exchange(ref _indexFile, null);
        var t = Interlocked.Exchange(ref _timeIndexFile, null);
        i?.Dispose();
        t?.Dispose();
    }

    /// <summary>Best effort: cut the file back to the committed size after a failed write.</summary>
    public void TruncateToCommitted()
    {
        try { RandomAccess.SetLength(Log, _size); } catch (IOException) { }
    }

    // ------------------------------------------------------------------------------------------
    // Reads (lock-free)

    /// <summary>
    /// Whole batches starting with the one that contains <paramref name="fetchOffset"/>, at most
    /// <paramref name="maxBytes"/> long unless the first batch alone is larger (then exactly that batch when
    /// <paramref name="minOneBatch"/>, else nothing). Null when no batch of this segment holds or follows the offset.
    /// </summary>
    public RecordsPayload? Read(long fetchOffset, int maxBytes, bool minOneBatch)
    {
        long end = Size;
        var index = EnsureOffsetIndex()!;
        long pos = index.LookupPosition(fetchOffset - BaseOffset);
        if (pos > end) pos = 0;
        Span<byte> buffer = stackalloc byte[4096];
        var cursor = new BatchCursor(Log, buffer, end);
        int firstSize;
        while (true)
        {
            if (pos >= end) return null;
            if (!cursor.TryReadHeader(pos, out long baseOffset, out firstSize, out int lastDelta))
                throw new InvalidDataException($"{DisplayName}: unreadable batch header at position {pos}");
            if (baseOffset + lastDelta >= fetchOffset) break;
            pos += firstSize;
        }
        if (firstSize > maxBytes)
            return minOneBatch ? new SegmentRecords(this, pos, firstSize) : RecordsPayload.Empty;
        long limit = pos + maxBytes;
        if (limit >= end) return new SegmentRecords(this, pos, (int)(end - pos));
        long b = Math.Max(pos + firstSize, index.LookupBoundaryAtOrBefore(limit));
        while (b < end)
        {
            if (!cursor.TryReadHeader(b, out _, out int size, out _)) break;
            if (b + size > limit) break;
            b += size;
        }
        return new SegmentRecords(this, pos, (int)(b - pos));
    }

    /// <summary>Copies file bytes for <see cref="SegmentRecords"/>.</summary>
    public void CopyTo(long position, Span<byte> destination)
    {
        int n = FileIO.ReadFully(Log, destination, position);
        if (n < destination.Length)
            throw new IOException($"{DisplayName}: expected {destination.Length} bytes at position {position}, file ended after {n}");
    }

    /// <summary>
    /// Timestamp lookup within this segment: the first record at or after <paramref name="minOffset"/> whose
    /// timestamp is &gt;= <paramref name="target"/> (or == target when <paramref name="exact"/>). The time index
    /// gives the starting offset, the offset index the position; then batch headers are scanned and the one
    /// matching batch is decoded. Compressed batches whose codec is unavailable yield the batch's first
    /// eligible offset.
    /// </summary>
    public OffsetAndTimestamp FindByTimestamp(long target, long minOffset, bool exact, long startOffsetHint = -1)
    {
        long end = Size;
        var time = EnsureTimeIndex()!;
        var index = EnsureOffsetIndex()!;
        long scanFrom = BaseOffset;
        if (startOffsetHint >= 0) scanFrom = Math.Max(scanFrom, startOffsetHint);
        else
        {
            long rel = time.LookupBefore(target);
            if (rel >= 0) scanFrom = BaseOffset + rel;
        }
        scanFrom = Math.Max(scanFrom, minOffset);
        long pos = index.LookupPosition(scanFrom - BaseOffset);
        using var reader = new ChunkReader(Log, end, 256 * 1024);
        while (pos < end)
        {
            var span = reader.Get(pos, RecordBatchHeader.Size);
            if (span.IsEmpty || !RecordBatchHeader.TryRead(span, out var h) || !IsSane(h, end - pos)) break;
            if (h.LastOffset >= scanFrom && (exact ? h.MaxTimestamp == target : h.MaxTimestamp >= target))
            {
                var batch = reader.Get(pos, h.TotalSize);
                if (batch.IsEmpty) break;
                var outcome = RecordWalker.Find(batch, h, minOffset, target, exact, out long off, out long ts);
                if (outcome == RecordWalker.Outcome.Found) return new OffsetAndTimestamp(off, ts);
                if (outcome == RecordWalker.Outcome.Unreadable)
                    return new OffsetAndTimestamp(Math.Max(h.BaseOffset, minOffset), exact ? target : h.MaxTimestamp);
            }
            pos += h.TotalSize;
        }
        return OffsetAndTimestamp.None;
    }

    /// <summary>Walks all batch headers (cold path: producer state rebuild).</summary>
    public void WalkHeaders(Action<RecordBatchHeader> onBatch)
    {
        long end = Size;
        long pos = 0;
        using var reader = new ChunkReader(Log, end);
        while (pos < end)
        {
            var span = reader.Get(pos, RecordBatchHeader.Size);
            if (span.IsEmpty || !RecordBatchHeader.TryRead(span, out var h) || !IsSane(h, end - pos)) break;
            onBatch(h);
            pos += h.TotalSize;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Lifetime

    /// <summary>Largest timestamp for retention: the max batch timestamp, or the file's mtime if no batch has one.</summary>
    public long LargestTimestampForRetention()
    {
        long ts = MaxTimestamp;
        if (ts >= 0) return ts;
        try { return new DateTimeOffset(File.GetLastWriteTimeUtc(LogPath)).ToUnixTimeMilliseconds(); }
        catch (IOException) { return long.MaxValue; }
    }

    /// <summary>Unlinks the files; the handles stay open (for in-flight reads) until <see cref="CloseHandles"/>.</summary>
    public void DeleteFiles()
    {
        FileIO.TryDelete(LogPath);
        FileIO.TryDelete(IndexPath);
        FileIO.TryDelete(TimeIndexPath);
    }

    public void CloseHandles()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        Log.Dispose();
        Interlocked.Exchange(ref _indexFile, null)?.Dispose();
        Interlocked.Exchange(ref _timeIndexFile, null)?.Dispose();
    }
}

/// <summary>
/// Record bytes served straight from a segment file: <see cref="CopyTo"/> reads them with one positional
/// read into the destination (no intermediate buffer). The segment's file handle stays valid for
/// file.delete.delay.ms after the segment is deleted; copying later than that throws
/// <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class SegmentRecords : RecordsPayload
{
    private readonly LogSegment _segment;

    internal SegmentRecords(LogSegment segment, long position, int length)
    {
        _segment = segment;
        Position = position;
        Length = length;
    }

    public override int Length { get; }
    /// <summary>Position of the first byte in the segment file.</summary>
    public long Position { get; }
    public string FilePath => _segment.LogPath;

    public override void CopyTo(Span<byte> destination) => _segment.CopyTo(Position, destination[..Length]);
}
