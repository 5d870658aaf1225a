using System.Buffers;
using Cairn.Protocol;
using Cairn.Protocol.Records;
using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// The append path of one partition log, in three steps: validate every batch of the request (nothing is written
/// if one is bad), stamp LogAppendTime when the topic uses it, then under the append lock check idempotent producers,
/// assign offsets, roll if needed and write. The high-water mark moves last, after the data is in the file.
/// </summary>
internal sealed class LogAppender(PartitionState state, LogFlusher flusher)
{
    /// <summary>See <see cref="PartitionLog.Append(Span{byte})"/>.</summary>
    public AppendResult Append(Span<byte> records)
    {
        if (state.Closed) return AppendResult.Failed(state.ClosedError, LogStartOffset, state.OfflineReason ?? "partition is closed");
        var cfg = state.Config;
        if (records.IsEmpty) return new AppendResult(ErrorCode.None, -1, -1, -1, LogStartOffset);

        BatchInfo[]? rented = null;
        Span<BatchInfo> infos = stackalloc BatchInfo[4];
        try
        {
            var failure = Validate(records, cfg, ref infos, ref rented, out int recordCount, out bool anySequence);
            if (failure is { } f) return f;
            long nowMs = state.NowMs;
            long logAppendTime = -1;
            if (cfg.MessageTimestampType == TimestampType.LogAppendTime)
            {
                logAppendTime = nowMs;
                for (int i = 0; i < infos.Length; i++)
                {
                    RecordBatchStamps.StampLogAppendTime(records.Slice(infos[i].Position, infos[i].Size), nowMs);
                    infos[i].MaxTimestamp = nowMs;
                }
            }
            return AppendLocked(records, infos, cfg, nowMs, logAppendTime, recordCount, anySequence);
        }
        finally
        {
            if (rented is not null) ArrayPool<BatchInfo>.Shared.Return(rented);
        }
    }

    private long LogStartOffset => Volatile.Read(ref state.LogStartOffset);

    private AppendResult Fail(ErrorCode code, string? message) => AppendResult.Failed(code, LogStartOffset, message);

    /// <summary>
    /// Validates the concatenated batches into <paramref name="infos"/> (grown from the pool past four batches).
    /// Returns the failure of the first bad batch, or null.
    /// </summary>
    private AppendResult? Validate(ReadOnlySpan<byte> records, LogConfig cfg, ref Span<BatchInfo> infos, ref BatchInfo[]? rented,
        out int recordCount, out bool anySequence)
    {
        var limits = new RecordBatchLimits(cfg.MaxMessageBytes, cfg.SegmentBytes);
        int count = 0, pos = 0;
        recordCount = 0;
        anySequence = false;
        while (pos < records.Length)
        {
            var v = RecordBatchValidator.ValidateFirst(records[pos..], limits);
            if (!v.IsValid) return Fail(v.Error, v.Message);
            if (count == infos.Length)
            {
                var bigger = ArrayPool<BatchInfo>.Shared.Rent(count * 2);
                infos.CopyTo(bigger);
                if (rented is not null) ArrayPool<BatchInfo>.Shared.Return(rented);
                rented = bigger;
                infos = bigger;
            }
            var h = v.Header;
            infos[count] = new BatchInfo
            {
                Position = pos,
                Size = v.Size,
                LastOffsetDelta = h.LastOffsetDelta,
                RecordCount = h.RecordCount,
                MaxTimestamp = h.MaxTimestamp,
                ProducerId = h.ProducerId,
                ProducerEpoch = h.ProducerEpoch,
                BaseSequence = h.BaseSequence,
                IsControl = h.IsControl,
            };
            anySequence |= infos[count].HasSequence;
            // Compressed batches' counts are taken on trust (the records are not decompressed), so their sum may not fit.
            if (h.RecordCount > int.MaxValue - recordCount)
                return Fail(ErrorCode.InvalidRecord, $"the batches claim more than {int.MaxValue} records in one request");
            recordCount += h.RecordCount;
            count++;
            pos += v.Size;
        }
        infos = infos[..count];
        return null;
    }

    private AppendResult AppendLocked(Span<byte> records, Span<BatchInfo> infos, LogConfig cfg, long nowMs, long logAppendTime,
        int recordCount, bool anySequence)
    {
        long baseOffset, lastOffset;
        lock (state.Lock)
        {
            if (state.Closed) return Fail(state.ClosedError, state.OfflineReason ?? "partition is closed");
            if (anySequence && CheckProducers(infos, logAppendTime) is { } rejected) return rejected;

            baseOffset = state.NextOffset;
            long off = baseOffset;
            for (int i = 0; i < infos.Length; i++)
            {
                infos[i].BaseOffset = off;
                RecordBatchHeader.WriteBaseOffset(records.Slice(infos[i].Position, RecordBatchHeader.Size), off);
                off += infos[i].LastOffsetDelta + 1L;
            }
            lastOffset = off - 1;

            var seg = state.Active;
            if (ShouldRoll(seg, records.Length, lastOffset, nowMs, cfg))
                seg = state.RollLocked(nowMs, "size/age");
            try
            {
                seg.Append(records, infos, cfg.IndexIntervalBytes, nowMs);
            }
            catch (IOException e)
            {
                seg.TruncateToCommitted();
                state.Logger.LogError(e, "{Partition}: append of {Bytes} bytes failed", state.Name, records.Length);
                return Fail(ErrorCode.KafkaStorageError, e.Message);
            }

            if (anySequence)
                for (int i = 0; i < infos.Length; i++)
                    if (infos[i].HasSequence)
                        state.Producers.Update(infos[i].ProducerId, infos[i].ProducerEpoch, infos[i].BaseSequence,
                            infos[i].LastOffsetDelta, infos[i].BaseOffset, infos[i].MaxTimestamp);
            flusher.CountAppended(recordCount);
            Volatile.Write(ref state.NextOffset, off);
        }
        return new AppendResult(ErrorCode.None, baseOffset, lastOffset, logAppendTime, LogStartOffset, RecordCount: recordCount);
    }

    /// <summary>Idempotent producers (under the lock): a cached retry answers with the original offsets, a gap or stale epoch fails.</summary>
    private AppendResult? CheckProducers(ReadOnlySpan<BatchInfo> infos, long logAppendTime)
    {
        for (int i = 0; i < infos.Length; i++)
        {
            if (!infos[i].HasSequence) continue;
            switch (state.Producers.Validate(infos, i, out var dup))
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
        return null;
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
}
