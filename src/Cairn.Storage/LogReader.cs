using Cairn.Protocol;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// The read side of one partition log, lock-free: fetch slices and offset lookups by timestamp. Reads take the
/// segment list as it is; a segment deleted under a read has its handle closed only after file.delete.delay.ms, and
/// a read that still loses the race (<see cref="ObjectDisposedException"/>) looks again.
/// </summary>
internal sealed class LogReader(PartitionState state)
{
    private const int Attempts = 3;

    /// <summary>See <see cref="PartitionLog.Read"/>.</summary>
    public ReadResult Read(long fetchOffset, int maxBytes, bool minOneBatch)
    {
        for (int attempt = 0; ; attempt++)
        {
            long hwm = Volatile.Read(ref state.NextOffset);
            long logStart = Volatile.Read(ref state.LogStartOffset);
            if (state.Closed) return new ReadResult(state.ClosedError, RecordsPayload.Empty, hwm, logStart);
            if (fetchOffset < logStart || fetchOffset > hwm)
                return new ReadResult(ErrorCode.OffsetOutOfRange, RecordsPayload.Empty, hwm, logStart);
            if (fetchOffset == hwm || (maxBytes <= 0 && !minOneBatch))
                return new ReadResult(ErrorCode.None, RecordsPayload.Empty, hwm, logStart);
            var segs = Volatile.Read(ref state.Segments);
            try
            {
                if (fetchOffset < segs[0].BaseOffset) // retention removed the segment after we read the log start offset
                    return new ReadResult(ErrorCode.OffsetOutOfRange, RecordsPayload.Empty, hwm, Volatile.Read(ref state.LogStartOffset));
                for (int i = FindSegment(segs, fetchOffset); i < segs.Length; i++)
                {
                    var payload = segs[i].Read(fetchOffset, maxBytes, minOneBatch);
                    if (payload is not null) return new ReadResult(ErrorCode.None, payload, hwm, logStart);
                }
                return new ReadResult(ErrorCode.None, RecordsPayload.Empty, hwm, logStart);
            }
            catch (ObjectDisposedException) when (attempt < Attempts)
            {
                // The segment was deleted and its handle closed under us: look again.
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                state.Logger.LogError(e, "{Partition}: read at offset {Offset} failed", state.Name, fetchOffset);
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

    /// <summary>See <see cref="PartitionLog.FindOffsetByTimestamp"/>.</summary>
    public OffsetAndTimestamp FindOffsetByTimestamp(long timestamp)
    {
        for (int attempt = 0; ; attempt++)
        {
            long logStart = Volatile.Read(ref state.LogStartOffset);
            var segs = Volatile.Read(ref state.Segments);
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
            catch (ObjectDisposedException) when (attempt < Attempts) { }
        }
    }

    /// <summary>See <see cref="PartitionLog.GetMaxTimestamp"/>.</summary>
    public OffsetAndTimestamp GetMaxTimestamp()
    {
        for (int attempt = 0; ; attempt++)
        {
            LogSegment? best = null;
            long bestTs = -1, bestOffset = -1;
            long logStart;
            // Under the lock, so the segment list, the log start offset and each segment's max timestamp agree.
            lock (state.Lock)
            {
                logStart = state.LogStartOffset;
                foreach (var seg in state.Segments)
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
            catch (ObjectDisposedException) when (attempt < Attempts) { }
        }
    }
}
