using Cairn.Protocol.Records;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>What a walk over a segment's batches found: rebuilt indexes, where the valid data ends, and why it stopped early.</summary>
internal sealed class SegmentScanResult
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

/// <summary>Where a segment's tail stands after <see cref="SegmentScan.QuickCheck"/> found it intact.</summary>
internal readonly record struct SegmentTail(long NextOffset, long MaxTimestamp, long OffsetOfMaxTimestamp, int BytesSinceLastIndexEntry);

/// <summary>
/// The recovery side of a segment: walking its batches from disk (structure, contiguous offsets, optionally the
/// CRC), rebuilding indexes with the same rule the append path uses, and the cheap check done at every open.
/// </summary>
internal static class SegmentScan
{
    public enum QuickCheckResult { Ok, IndexDamaged, TailDamaged }

    /// <summary>A header that can be trusted to walk on: magic 2, a length that fits, non-negative offsets.</summary>
    public static bool IsSane(in RecordBatchHeader h, long available) =>
        h.Magic == 2
        && h.BatchLength >= RecordBatchHeader.Size - RecordBatchHeader.LogOverhead
        && h.TotalSize <= available
        && h.LastOffsetDelta >= 0
        && h.BaseOffset >= 0;

    /// <summary>
    /// The per-batch index rule shared by appends and rebuilds: an offset entry once <paramref name="interval"/> bytes
    /// were written since the last one, with a time entry for the largest timestamp so far.
    /// </summary>
    public static void Track(OffsetIndex index, TimeIndex time, long segBase, ref int bytesSince, ref long maxTs, ref long offMax,
        long baseOffset, long lastOffset, long batchMaxTs, long position, int size, int interval)
    {
        if (batchMaxTs > maxTs) { maxTs = batchMaxTs; offMax = lastOffset; }
        if (bytesSince >= interval)
        {
            index.Append(new OffsetIndexEntry((int)(baseOffset - segBase), (int)position));
            if (maxTs >= 0) time.TryAppend(new TimeIndexEntry(maxTs, (int)(offMax - segBase)));
            bytesSince = 0;
        }
        bytesSince += size;
    }

    /// <summary>
    /// Walks every batch from the start of the file, checking structure and offsets (and the CRC when asked),
    /// building indexes with the same rule as the append path. Stops at the first bad batch.
    /// </summary>
    public static SegmentScanResult Scan(SafeFileHandle log, long baseOffset, bool verifyCrc, int indexInterval, long size)
    {
        var r = new SegmentScanResult { NextOffset = baseOffset };
        long pos = 0;
        using var reader = new ChunkReader(log, size);
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
            Track(r.Index, r.TimeIndex, baseOffset, ref r.BytesSinceLastIndexEntry, ref r.MaxTimestamp, ref r.OffsetOfMaxTimestamp,
                h.BaseOffset, h.LastOffset, h.MaxTimestamp, pos, h.TotalSize, indexInterval);
            pos += h.TotalSize;
            r.NextOffset = h.NextOffset;
            r.Batches++;
        }
        r.ValidEnd = pos;
        return r;
    }

    /// <summary>
    /// The check done at every open of a segment that needs no full recovery: both index files present and whole,
    /// their last entries inside the log, and the batches after the last offset entry chaining exactly to the end of
    /// the file. <see cref="QuickCheckResult.IndexDamaged"/> asks for an index rebuild, <see cref="QuickCheckResult.TailDamaged"/>
    /// for a CRC walk and truncation; on <see cref="QuickCheckResult.Ok"/>, <paramref name="tail"/> says where the data ends.
    /// </summary>
    public static QuickCheckResult QuickCheck(SafeFileHandle log, long baseOffset, long size, string indexPath, string timeIndexPath,
        out SegmentTail tail, out string? problem)
    {
        tail = default;
        problem = null;
        long idxLen = File.Exists(indexPath) ? new FileInfo(indexPath).Length : -1;
        long tIdxLen = File.Exists(timeIndexPath) ? new FileInfo(timeIndexPath).Length : -1;
        if (idxLen < 0 || tIdxLen < 0)
        {
            problem = idxLen < 0 ? "offset index missing" : "time index missing";
            return QuickCheckResult.IndexDamaged;
        }
        if (idxLen % OffsetIndexEntry.Size != 0 || tIdxLen % TimeIndexEntry.Size != 0)
        {
            problem = "index file has a partial entry";
            return QuickCheckResult.IndexDamaged;
        }
        int lastRel = -1, lastPos = -1;
        Span<byte> tmp = stackalloc byte[TimeIndexEntry.Size];
        if (idxLen > 0)
        {
            using var h = File.OpenHandle(indexPath, FileMode.Open, FileAccess.Read, FileIO.Share);
            var entry = tmp[..OffsetIndexEntry.Size];
            if (FileIO.ReadFully(h, entry, idxLen - OffsetIndexEntry.Size) != entry.Length) { problem = "offset index unreadable"; return QuickCheckResult.IndexDamaged; }
            (lastRel, lastPos) = OffsetIndexEntry.Read(entry);
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
            using var h = File.OpenHandle(timeIndexPath, FileMode.Open, FileAccess.Read, FileIO.Share);
            if (FileIO.ReadFully(h, tmp, tIdxLen - TimeIndexEntry.Size) != TimeIndexEntry.Size) { problem = "time index unreadable"; return QuickCheckResult.IndexDamaged; }
            (timeLastTs, timeLastRel) = TimeIndexEntry.Read(tmp);
            if (timeLastRel < 0 || timeLastTs < 0) { problem = "time index entry invalid"; return QuickCheckResult.IndexDamaged; }
        }

        // Walk the batches after the last index entry: they must chain exactly to the end of the file.
        long pos = lastPos >= 0 ? lastPos : 0;
        long expected = lastPos >= 0 ? baseOffset + lastRel : baseOffset;
        long maxTs = -1, offMax = -1;
        using (var reader = new ChunkReader(log, size, 64 * 1024))
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
        if (timeLastRel >= 0 && baseOffset + timeLastRel >= expected)
        {
            problem = "time index entry points past the last offset";
            return QuickCheckResult.IndexDamaged;
        }
        int bytesSince = (int)(size - (lastPos >= 0 ? lastPos : 0));
        tail = timeLastTs >= maxTs && timeLastTs >= 0
            ? new SegmentTail(expected, timeLastTs, baseOffset + timeLastRel, bytesSince)
            : new SegmentTail(expected, maxTs, offMax, bytesSince);
        return QuickCheckResult.Ok;
    }
}
