// Over 400 lines because the segment owns both its files and its write side (create, recovery at open, lazy index
// loading, append, flush, delete); the batch walks are in SegmentScan and the reads in SegmentReads.
using System.Globalization;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>
/// One segment of a partition log: the .log file (batches back to back, exactly as produced, with the
/// assigned base offset), a sparse .index and a .timeindex. This type owns the files and the write side:
/// appends come from one writer at a time (the partition's append lock), and <see cref="Size"/> is published
/// after the data is written. Recovery scans are in <see cref="SegmentScan"/>, the lock-free reads in
/// <see cref="SegmentReads"/>. The files are <see cref="SegmentFile"/>s: their handles may be closed while idle to stay
/// within the broker's <see cref="FileHandleBudget"/>, so every use takes a lease (<see cref="AcquireLog"/>).
/// </summary>
internal sealed class LogSegment
{
    public const string LogSuffix = ".log";
    public const string IndexSuffix = ".index";
    public const string TimeIndexSuffix = ".timeindex";

    public readonly long BaseOffset;
    public readonly string IndexPath;
    public readonly string TimeIndexPath;

    private readonly ILogger _logger;
    private readonly string _name;
    private readonly Lock _loadLock = new();
    private readonly SegmentFile _log;
    private readonly FileHandleBudget _files;

    private long _size;
    private long _nextOffset;
    private OffsetIndex? _index;
    private TimeIndex? _timeIndex;
    private SegmentFile? _indexFile;
    private SegmentFile? _timeIndexFile;
    private int _indexPersisted;
    private int _timeIndexPersisted;
    private long _maxTimestamp = -1;
    private long _offsetOfMaxTimestamp = -1;
    private int _bytesSinceLastIndexEntry;
    private long _rollBaseTimeMs = -1;
    private int _closed;
    private volatile bool _deleted;

    /// <summary>index.interval.bytes used when indexes are rebuilt lazily (kept current by the partition).</summary>
    public int IndexInterval = 4096;

    private LogSegment(string dir, long baseOffset, SegmentFile log, FileHandleBudget files, ILogger logger, string name)
    {
        BaseOffset = baseOffset;
        IndexPath = PathFor(dir, baseOffset, IndexSuffix);
        TimeIndexPath = PathFor(dir, baseOffset, TimeIndexSuffix);
        _log = log;
        _files = files;
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

    /// <summary>Where the .log file is now (it ends in .deleted once retention removed the segment).</summary>
    public string LogPath => _log.Path;

    /// <summary>The .log handle for one synchronous operation (reopened if it was closed to stay within the budget).</summary>
    public FileLease AcquireLog() => _log.Acquire();

    /// <summary>Whether the .log handle is open now (tests).</summary>
    internal bool IsLogOpen => _log.IsOpen;

    // ------------------------------------------------------------------------------------------
    // Creation and recovery

    public static LogSegment Create(string dir, long baseOffset, FileHandleBudget files, ILogger logger, string name)
    {
        var log = SegmentFile.Open(files, PathFor(dir, baseOffset, LogSuffix), FileMode.Create);
        var seg = new LogSegment(dir, baseOffset, log, files, logger, name)
        {
            _index = new OffsetIndex(),
            _timeIndex = new TimeIndex(),
        };
        try
        {
            seg._indexFile = SegmentFile.Open(files, seg.IndexPath, FileMode.Create);
            seg._timeIndexFile = SegmentFile.Open(files, seg.TimeIndexPath, FileMode.Create);
        }
        catch
        {
            seg.CloseHandles();
            throw;
        }
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
        FileHandleBudget files, ILogger logger, string name, long nowMs, out OpenOutcome outcome)
    {
        var file = SegmentFile.Open(files, PathFor(dir, baseOffset, LogSuffix), FileMode.Open);
        var seg = new LogSegment(dir, baseOffset, file, files, logger, name) { IndexInterval = indexInterval };
        try
        {
            using var lease = file.Acquire();
            var log = lease.Handle;
            seg._size = RandomAccess.GetLength(log);
            outcome = OpenOutcome.Clean;
            if (fullRecovery)
            {
                outcome = seg.Recover(log, verifyCrc: true, indexInterval, "unclean shutdown");
            }
            else
            {
                var check = SegmentScan.QuickCheck(log, baseOffset, seg._size, seg.IndexPath, seg.TimeIndexPath, out var tail, out var problem);
                if (check == SegmentScan.QuickCheckResult.Ok)
                {
                    seg._nextOffset = tail.NextOffset;
                    seg._maxTimestamp = tail.MaxTimestamp;
                    seg._offsetOfMaxTimestamp = tail.OffsetOfMaxTimestamp;
                    seg._bytesSinceLastIndexEntry = tail.BytesSinceLastIndexEntry;
                }
                else
                {
                    outcome = seg.Recover(log, verifyCrc: check == SegmentScan.QuickCheckResult.TailDamaged, indexInterval, problem!);
                }
            }
            if (active)
            {
                if (seg.EnsureOffsetIndex() is null || seg.EnsureTimeIndex() is null)
                    throw new InvalidOperationException("index not loaded");
                seg._indexPersisted = seg._index!.Count;
                seg._timeIndexPersisted = seg._timeIndex!.Count;
                // The index files exist now (the quick check found them, or recovery wrote them). They are opened on the
                // first index entry appended: at start-up with thousands of partitions most never are, and two opens per
                // partition would only churn the file budget. Index bytes past what was loaded (a partial trailing entry)
                // are dropped now.
                seg._indexFile = OpenIndexFile(files, seg.IndexPath, (long)seg._indexPersisted * OffsetIndex.EntrySize);
                seg._timeIndexFile = OpenIndexFile(files, seg.TimeIndexPath, (long)seg._timeIndexPersisted * TimeIndex.EntrySize);
                if (seg._size > 0) seg._rollBaseTimeMs = FirstBatchTimestampOr(log, nowMs);
            }
            return seg;
        }
        catch
        {
            seg.CloseHandles();
            throw;
        }
    }

    private static SegmentFile OpenIndexFile(FileHandleBudget files, string path, long length)
    {
        var info = new FileInfo(path);
        if (info.Exists && info.Length == length) return SegmentFile.OpenLazily(files, path);
        var file = SegmentFile.Open(files, path, FileMode.OpenOrCreate);
        try
        {
            using var lease = file.Acquire();
            RandomAccess.SetLength(lease.Handle, length);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return file;
    }

    private OpenOutcome Recover(SafeFileHandle log, bool verifyCrc, int indexInterval, string reason)
    {
        long size = _size;
        var r = SegmentScan.Scan(log, BaseOffset, verifyCrc, indexInterval, size);
        var outcome = OpenOutcome.IndexRebuilt;
        if (r.ValidEnd < size)
        {
            _logger.LogWarning("{Segment}: truncating log from {Size} to {ValidEnd} bytes ({Problem}); next offset {Next}",
                DisplayName, size, r.ValidEnd, r.Problem, r.NextOffset);
            RandomAccess.SetLength(log, r.ValidEnd);
            RandomAccess.FlushToDisk(log);
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

    private void ApplyScan(SegmentScanResult r)
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

    private static long FirstBatchTimestampOr(SafeFileHandle log, long nowMs)
    {
        Span<byte> hdr = stackalloc byte[RecordBatchHeader.Size];
        if (FileIO.ReadFully(log, hdr, 0) == hdr.Length && RecordBatchHeader.TryRead(hdr, out var h)
            && h.MaxTimestamp >= 0 && h.MaxTimestamp <= nowMs)
            return h.MaxTimestamp;
        return nowMs;
    }

    // ------------------------------------------------------------------------------------------
    // Lazy index loading (inactive segments)

    /// <summary>The offset index, loading (and if damaged rebuilding) it from disk on first use.</summary>
    public OffsetIndex? EnsureOffsetIndex() =>
        Volatile.Read(ref _index) ?? LoadIndex(ref _index, IndexPath, NextOffset - BaseOffset - 1);

    /// <summary>The time index, loading (and if damaged rebuilding) it from disk on first use.</summary>
    public TimeIndex? EnsureTimeIndex() =>
        Volatile.Read(ref _timeIndex) ?? LoadIndex(ref _timeIndex, TimeIndexPath, Math.Max(0, NextOffset - BaseOffset - 1));

    private FixedWidthIndex<T>? LoadIndex<T>(ref FixedWidthIndex<T>? field, string path, long maxRelativeOffset)
        where T : struct, IIndexEntry<T>
    {
        lock (_loadLock)
        {
            if (field is not null) return field;
            long size = Size;
            var bytes = FileIO.TryReadAll(path);
            var parsed = bytes is null ? null : FixedWidthIndex<T>.TryParse(bytes, size, maxRelativeOffset);
            if (parsed is null)
            {
                RebuildLazily(size, bytes is null ? "missing" : "damaged"); // sets both indexes, this one included
                return field;
            }
            Volatile.Write(ref field, parsed);
            return parsed;
        }
    }

    private void RebuildLazily(long size, string what)
    {
        // Called for a segment already validated at open: structure problems here are not truncated.
        SegmentScanResult r;
        using (var lease = _log.Acquire())
            r = SegmentScan.Scan(lease.Handle, BaseOffset, verifyCrc: false, IndexInterval, size);
        if (r.Problem is not null)
            _logger.LogError("{Segment}: batch scan stopped early while rebuilding indexes: {Problem}", DisplayName, r.Problem);
        try
        {
            // A deleted segment is still read for a while; its index files must not come back.
            if (!_deleted)
            {
                WriteIndexFileIfDifferent(IndexPath, r.Index.Serialize());
                WriteIndexFileIfDifferent(TimeIndexPath, r.TimeIndex.Serialize());
            }
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
        using (var lease = _log.Acquire())
            RandomAccess.Write(lease.Handle, data, pos);
        _log.MarkDirty();
        var index = _index!;
        var time = _timeIndex!;
        for (int i = 0; i < batches.Length; i++)
        {
            ref readonly var b = ref batches[i];
            SegmentScan.Track(index, time, BaseOffset, ref _bytesSinceLastIndexEntry, ref _maxTimestamp, ref _offsetOfMaxTimestamp,
                b.BaseOffset, b.LastOffset, b.MaxTimestamp, pos + b.Position, b.Size, indexInterval);
        }
        PersistIndexTail();
        if (pos == 0) _rollBaseTimeMs = nowMs;
        Volatile.Write(ref _size, pos + data.Length);
        Volatile.Write(ref _nextOffset, batches[^1].LastOffset + 1);
    }

    private void PersistIndexTail()
    {
        try
        {
            // Only when there are new entries: most appends add none, and take no lease on the index files.
            if (_indexFile is { } indexFile && _index!.Count > _indexPersisted)
            {
                using var lease = indexFile.Acquire();
                _indexPersisted = _index.WriteTail(lease.Handle, _indexPersisted);
                indexFile.MarkDirty();
            }
            if (_timeIndexFile is { } timeIndexFile && _timeIndex!.Count > _timeIndexPersisted)
            {
                using var lease = timeIndexFile.Acquire();
                _timeIndexPersisted = _timeIndex.WriteTail(lease.Handle, _timeIndexPersisted);
                timeIndexFile.MarkDirty();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The index is an optimization: it is validated and rebuilt on recovery.
            _logger.LogWarning(e, "{Segment}: failed to write index entries", DisplayName);
        }
    }

    /// <summary>Called when this segment stops being the active one (roll or close): final time index entry.</summary>
    public void Seal()
    {
        var time = _timeIndex;
        if (time is not null && _maxTimestamp >= 0 && time.TryAppend(new TimeIndexEntry(_maxTimestamp, (int)(_offsetOfMaxTimestamp - BaseOffset))))
            PersistIndexTail();
    }

    /// <summary>fsync the log (and index files while they are open for appends).</summary>
    public void Flush(bool includeIndexes)
    {
        if (IsClosed) return;
        _log.Flush();
        if (includeIndexes)
        {
            _indexFile?.Flush();
            _timeIndexFile?.Flush();
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
        try
        {
            using var lease = _log.Acquire();
            RandomAccess.SetLength(lease.Handle, _size);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
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

    /// <summary>
    /// Removes the segment's files: the indexes at once, the .log renamed to *.deleted (still readable, reopening
    /// included, for in-flight reads) and unlinked by <see cref="CloseHandles"/>.
    /// </summary>
    public void DeleteFiles()
    {
        _deleted = true;
        _log.MarkDeleted();
        FileIO.TryDelete(IndexPath);
        FileIO.TryDelete(TimeIndexPath);
    }

    /// <summary>Closes the files for good (each when its last lease ends); a deleted segment's .log is unlinked then.</summary>
    public void CloseHandles()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _log.Dispose();
        Interlocked.Exchange(ref _indexFile, null)?.Dispose();
        Interlocked.Exchange(ref _timeIndexFile, null)?.Dispose();
    }
}
