using Cairn.Protocol.Records;

namespace Cairn.Storage;

/// <summary>
/// The read path of a segment, lock-free: fetch slices (whole batches from the one holding an offset), timestamp
/// lookups and header walks. Reads look only at bytes below <see cref="LogSegment.Size"/>, which the writer publishes
/// after the data is in the file.
/// </summary>
internal static class SegmentReads
{
    /// <summary>
    /// Whole batches starting with the one that contains <paramref name="fetchOffset"/>, at most
    /// <paramref name="maxBytes"/> long unless the first batch alone is larger (then exactly that batch when
    /// <paramref name="minOneBatch"/>, else nothing). Null when no batch of this segment holds or follows the offset.
    /// </summary>
    public static RecordsPayload? Read(this LogSegment segment, long fetchOffset, int maxBytes, bool minOneBatch)
    {
        long end = segment.Size;
        var index = segment.EnsureOffsetIndex()!;
        long pos = index.LookupPosition(fetchOffset - segment.BaseOffset);
        if (pos > end) pos = 0;
        Span<byte> buffer = stackalloc byte[4096];
        using var lease = segment.AcquireLog();
        var cursor = new BatchCursor(lease.Handle, buffer, end);
        int firstSize;
        while (true)
        {
            if (pos >= end) return null;
            if (!cursor.TryReadHeader(pos, out long baseOffset, out firstSize, out int lastDelta))
                throw new InvalidDataException($"{segment.DisplayName}: unreadable batch header at position {pos}");
            if (baseOffset + lastDelta >= fetchOffset) break;
            pos += firstSize;
        }
        if (firstSize > maxBytes)
            return minOneBatch ? new SegmentRecords(segment, pos, firstSize) : RecordsPayload.Empty;
        long limit = pos + maxBytes;
        if (limit >= end) return new SegmentRecords(segment, pos, (int)(end - pos));
        long b = Math.Max(pos + firstSize, index.LookupBoundaryAtOrBefore(limit));
        while (b < end)
        {
            if (!cursor.TryReadHeader(b, out _, out int size, out _)) break;
            if (b + size > limit) break;
            b += size;
        }
        return new SegmentRecords(segment, pos, (int)(b - pos));
    }

    /// <summary>Copies file bytes for <see cref="SegmentRecords"/>.</summary>
    public static void CopyTo(this LogSegment segment, long position, Span<byte> destination)
    {
        int n;
        using (var lease = segment.AcquireLog())
            n = FileIO.ReadFully(lease.Handle, destination, position);
        if (n < destination.Length)
            throw new IOException($"{segment.DisplayName}: expected {destination.Length} bytes at position {position}, file ended after {n}");
    }

    /// <summary>
    /// Timestamp lookup within this segment: the first record at or after <paramref name="minOffset"/> whose
    /// timestamp is &gt;= <paramref name="target"/> (or == target when <paramref name="exact"/>). The time index
    /// gives the starting offset, the offset index the position; then batch headers are scanned and the one
    /// matching batch is decoded. Compressed batches whose codec is unavailable yield the batch's first
    /// eligible offset.
    /// </summary>
    public static OffsetAndTimestamp FindByTimestamp(this LogSegment segment, long target, long minOffset, bool exact, long startOffsetHint = -1)
    {
        long end = segment.Size;
        var time = segment.EnsureTimeIndex()!;
        var index = segment.EnsureOffsetIndex()!;
        long scanFrom = segment.BaseOffset;
        if (startOffsetHint >= 0) scanFrom = Math.Max(scanFrom, startOffsetHint);
        else
        {
            long rel = time.LookupBefore(target);
            if (rel >= 0) scanFrom = segment.BaseOffset + rel;
        }
        scanFrom = Math.Max(scanFrom, minOffset);
        long pos = index.LookupPosition(scanFrom - segment.BaseOffset);
        using var lease = segment.AcquireLog();
        using var reader = new ChunkReader(lease.Handle, end, 256 * 1024);
        while (pos < end)
        {
            var span = reader.Get(pos, RecordBatchHeader.Size);
            if (span.IsEmpty || !RecordBatchHeader.TryRead(span, out var h) || !SegmentScan.IsSane(h, end - pos)) break;
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
    public static void WalkHeaders(this LogSegment segment, Action<RecordBatchHeader> onBatch)
    {
        long end = segment.Size;
        long pos = 0;
        using var lease = segment.AcquireLog();
        using var reader = new ChunkReader(lease.Handle, end);
        while (pos < end)
        {
            var span = reader.Get(pos, RecordBatchHeader.Size);
            if (span.IsEmpty || !RecordBatchHeader.TryRead(span, out var h) || !SegmentScan.IsSane(h, end - pos)) break;
            onBatch(h);
            pos += h.TotalSize;
        }
    }
}

/// <summary>
/// Record bytes served straight from a segment file: <see cref="CopyTo"/> reads them with one positional
/// read into the destination (no intermediate buffer). No handle is held in between: the copy takes a lease on the
/// segment file, reopening it if it was closed to stay within the file budget. A deleted segment stays readable for
/// file.delete.delay.ms; copying later than that throws <see cref="ObjectDisposedException"/>.
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
