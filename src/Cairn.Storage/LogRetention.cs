using Cairn.Protocol;
using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// Moving the start of one partition log: DeleteRecords raises the log start offset, retention.ms and
/// retention.bytes drop whole old segments. Segments go under the append lock; their files are unlinked at once
/// and their handles closed after file.delete.delay.ms, so reads already holding them finish. The new log start
/// offset is checkpointed.
/// </summary>
internal sealed class LogRetention(PartitionState state)
{
    /// <summary>See <see cref="PartitionLog.DeleteRecords"/>.</summary>
    public DeleteRecordsResult DeleteRecords(long beforeOffset)
    {
        if (state.Closed) return new DeleteRecordsResult(state.ClosedError, -1);
        List<LogSegment>? deleted;
        long newStart;
        lock (state.Lock)
        {
            if (beforeOffset < 0 || beforeOffset > state.NextOffset)
                return new DeleteRecordsResult(ErrorCode.OffsetOutOfRange, state.LogStartOffset);
            if (beforeOffset > state.LogStartOffset) Volatile.Write(ref state.LogStartOffset, beforeOffset);
            newStart = state.LogStartOffset;
            deleted = RemoveSegmentsBelowLocked(newStart, 0);
            state.Producers.RemoveBefore(newStart);
        }
        state.Checkpoint.Write(ref state.LogStartOffset);
        DeleteSegments(deleted, "log start offset moved by DeleteRecords");
        return new DeleteRecordsResult(ErrorCode.None, newStart);
    }

    /// <summary>See <see cref="PartitionLog.ApplyRetention"/>.</summary>
    public RetentionResult ApplyRetention(DateTimeOffset now)
    {
        if (state.Closed) return new RetentionResult(0, 0, Volatile.Read(ref state.LogStartOffset));
        var cfg = state.Config;
        long nowMs = now.ToUnixTimeMilliseconds();
        List<LogSegment>? deleted;
        string reason;
        long logStart;
        lock (state.Lock)
        {
            var segs = state.Segments;
            int k = 0;
            while (k < segs.Length - 1 && segs[k].NextOffset <= state.LogStartOffset) k++;
            reason = "below the log start offset";
            if (cfg.DeleteEnabled && cfg.RetentionMs >= 0)
            {
                int before = k;
                while (k < segs.Length - 1 && nowMs - segs[k].LargestTimestampForRetention() > cfg.RetentionMs) k++;
                var active = state.Active;
                if (k == segs.Length - 1 && !active.IsEmpty && nowMs - active.LargestTimestampForRetention() > cfg.RetentionMs)
                {
                    state.RollLocked(nowMs, "active segment past retention.ms");
                    segs = state.Segments;
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
            if (deleted is not null) state.Producers.RemoveBefore(state.LogStartOffset);
            logStart = state.LogStartOffset;
        }
        if (deleted is null) return new RetentionResult(0, 0, logStart);
        long bytes = 0;
        foreach (var s in deleted) bytes += s.Size;
        state.Checkpoint.Write(ref state.LogStartOffset);
        DeleteSegments(deleted, reason);
        return new RetentionResult(deleted.Count, bytes, logStart);
    }

    /// <summary>Removes leading non-active segments that end at or before <paramref name="logStart"/>, plus the first <paramref name="atLeast"/>.</summary>
    private List<LogSegment>? RemoveSegmentsBelowLocked(long logStart, int atLeast)
    {
        var segs = state.Segments;
        int k = atLeast;
        while (k < segs.Length - 1 && segs[k].NextOffset <= logStart) k++;
        if (k == 0) return null;
        var removed = new List<LogSegment>(k);
        for (int i = 0; i < k; i++) removed.Add(segs[i]);
        long first = segs[k].BaseOffset;
        if (first > state.LogStartOffset) Volatile.Write(ref state.LogStartOffset, first);
        Volatile.Write(ref state.Segments, segs[k..]);
        return removed;
    }

    private void DeleteSegments(List<LogSegment>? segments, string reason)
    {
        if (segments is null) return;
        var delay = TimeSpan.FromMilliseconds(Math.Min(state.Config.FileDeleteDelayMs, int.MaxValue));
        foreach (var seg in segments)
        {
            long size = seg.Size;
            seg.DeleteFiles();
            state.Closer.Schedule(seg, delay);
            state.Logger.LogInformation("{Partition}: deleted segment {Base} (offsets {Base}..{Last}, {Size} bytes): {Reason}",
                state.Name, seg.BaseOffset, seg.BaseOffset, seg.NextOffset - 1, size, reason);
        }
    }
}
