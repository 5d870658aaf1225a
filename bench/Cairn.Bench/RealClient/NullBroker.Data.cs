using System.Buffers.Binary;
using System.Diagnostics;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;

namespace Cairn.Bench.RealClient;

/// <summary>Produce and Fetch of the null broker: per-batch work only, nothing stored but a replay copy.</summary>
internal sealed partial class NullBroker
{
    /// <summary>
    /// A partition's replay copy is refreshed from a produced batch at most this often, so producing copies a
    /// negligible share of the bytes (copying every batch would add a memcpy of everything to the produce path).
    /// </summary>
    private static readonly long ReplayRefreshTicks = Stopwatch.Frequency / 10;

    private TaskCompletionSource _produced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _fetchWaiters;

    /// <summary>
    /// Acknowledges each partition's batches with the partition's next offsets (advanced by the record counts in the
    /// batch headers), after appending them to the sink file (and fsyncing it) when one is configured. Checks only
    /// the framing of each batch (sizes, magic 2, record count), not CRCs or records. acks=0 gets no response.
    /// </summary>
    private ProduceResponse? HandleProduce(ProduceRequest request)
    {
        var response = new ProduceResponse();
        bool validAcks = request.Acks is 0 or 1 or -1;
        bool appended = false;
        foreach (var topicData in request.TopicData)
        {
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topicData.Name };
            response.Responses.Add(topicResponse);
            foreach (var partitionData in topicData.PartitionData)
            {
                var result = new ProduceResponse.TopicProduceResponse.PartitionProduceResponse { Index = partitionData.Index, BaseOffset = -1 };
                topicResponse.PartitionResponses.Add(result);
                var partition = FindPartition(topicData.Name, partitionData.Index);
                ErrorCode error;
                ReadOnlyMemory<byte> records = partitionData.Records is MemoryRecords m ? m.Bytes : ReadOnlyMemory<byte>.Empty;
                int recordCount = 0, batches = 0, lastBatchStart = 0;
                if (!validAcks) error = ErrorCode.InvalidRequiredAcks;
                else if (request.TransactionalId is not null) error = ErrorCode.TransactionalIdAuthorizationFailed;
                else if (partition is null) error = ErrorCode.UnknownTopicOrPartition;
                else error = ScanBatches(records.Span, out recordCount, out batches, out lastBatchStart);
                if (error != ErrorCode.None)
                {
                    result.ErrorCode = (short)error;
                    continue;
                }
                if (_sink is not null)
                {
                    lock (_sinkLock) _sink.Write(records.Span);
                    appended = true;
                }
                result.BaseOffset = Interlocked.Add(ref partition!.NextOffset, recordCount) - recordCount;
                result.LogStartOffset = 0;
                KeepForReplay(partition, records[lastBatchStart..]);
                Interlocked.Add(ref _producedBatches, batches);
                Interlocked.Add(ref _producedBytes, records.Length);
            }
        }
        if (appended && _options.FsyncOnAck)
        {
            lock (_sinkLock) _sink!.Flush(flushToDisk: true);
        }
        if (Volatile.Read(ref _fetchWaiters) > 0)
            Interlocked.Exchange(ref _produced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return request.Acks == 0 ? null : response;
    }

    /// <summary>Walks the batch headers: CORRUPT_MESSAGE for truncated or mis-sized batches, INVALID_RECORD for other magics or empty batches.</summary>
    private static ErrorCode ScanBatches(ReadOnlySpan<byte> records, out int recordCount, out int batches, out int lastBatchStart)
    {
        recordCount = 0;
        batches = 0;
        lastBatchStart = 0;
        if (records.IsEmpty) return ErrorCode.InvalidRecord;
        int position = 0;
        while (position < records.Length)
        {
            var rest = records[position..];
            if (rest.Length < RecordBatchHeader.Size) return ErrorCode.CorruptMessage;
            int size = BinaryPrimitives.ReadInt32BigEndian(rest[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
            if (size < RecordBatchHeader.Size || size > rest.Length) return ErrorCode.CorruptMessage;
            if (rest[RecordBatchHeader.MagicOffset] != 2) return ErrorCode.InvalidRecord;
            int count = BinaryPrimitives.ReadInt32BigEndian(rest[RecordBatchHeader.RecordCountOffset..]);
            if (count < 1 || count > int.MaxValue - recordCount) return ErrorCode.InvalidRecord;
            recordCount += count;
            batches++;
            lastBatchStart = position;
            position += size;
        }
        return ErrorCode.None;
    }

    private static void KeepForReplay(Partition partition, ReadOnlyMemory<byte> lastBatch)
    {
        long now = Stopwatch.GetTimestamp();
        long copiedAt = Volatile.Read(ref partition.ReplayCopiedAt);
        if (Volatile.Read(ref partition.Replay) is not null && now - copiedAt < ReplayRefreshTicks) return;
        if (Interlocked.CompareExchange(ref partition.ReplayCopiedAt, now, copiedAt) != copiedAt) return;
        var span = lastBatch.Span;
        int size = BinaryPrimitives.ReadInt32BigEndian(span[RecordBatchHeader.BatchLengthOffset..]) + RecordBatchHeader.LogOverhead;
        int count = BinaryPrimitives.ReadInt32BigEndian(span[RecordBatchHeader.RecordCountOffset..]);
        Volatile.Write(ref partition.Replay, new ReplayBatch(span[..size].ToArray(), count));
    }

    /// <summary>
    /// Answers at once when there is something to return (data or an error); otherwise (nothing produced and no
    /// FetchBatch) waits, like Kafka's fetch purgatory, until a produce or max_wait_ms, answering earlier requests first.
    /// </summary>
    private async ValueTask<FetchResponse> FetchAsync(Connection connection, FetchRequest request, CancellationToken ct)
    {
        // Registered before looking, so a produce that lands between the look and the wait still wakes it.
        Interlocked.Increment(ref _fetchWaiters);
        try
        {
            var produced = Volatile.Read(ref _produced).Task;
            var response = BuildFetchResponse(request, out bool ready);
            if (ready || request.MaxWaitMs <= 0 || request.MinBytes <= 0) return response;
            await connection.FlushAsync(ct);
            await Task.WhenAny(produced, Task.Delay(request.MaxWaitMs, ct));
            ct.ThrowIfCancellationRequested();
            return BuildFetchResponse(request, out _);
        }
        finally
        {
            Interlocked.Decrement(ref _fetchWaiters);
        }
    }

    /// <summary>
    /// Every known partition answers with one replayed batch whose base offset is the fetch offset and a high-water
    /// mark just after it, so a consumer always finds more. Sizes follow Kafka: the first partition with data gets
    /// its whole batch even above the limits; later ones get at most partition_max_bytes and what is left of
    /// max_bytes, which may cut a batch (clients skip a partial batch at the end).
    /// </summary>
    private FetchResponse BuildFetchResponse(FetchRequest request, out bool ready)
    {
        ready = false;
        var response = new FetchResponse();
        if (request.SessionEpoch > 0 || (request.SessionId != 0 && request.SessionEpoch != -1))
        {
            // No fetch sessions are ever created here (every response carries session id 0), so none can be continued.
            response.ErrorCode = (short)ErrorCode.FetchSessionIdNotFound;
            ready = true;
            return response;
        }
        long budget = request.MaxBytes;
        long returned = 0;
        foreach (var t in request.Topics)
        {
            var topicResponse = new FetchResponse.FetchableTopicResponse { Topic = t.Topic, TopicId = t.TopicId };
            response.Responses.Add(topicResponse);
            foreach (var p in t.Partitions)
            {
                var result = new FetchResponse.FetchableTopicResponse.PartitionData { PartitionIndex = p.Partition, HighWatermark = -1, Records = RecordsPayload.Empty };
                topicResponse.Partitions.Add(result);
                var partition = FindPartition(t.Topic, p.Partition);
                if (partition is null)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    ready = true;
                    continue;
                }
                var batch = Volatile.Read(ref partition.Replay) ?? _replayBatch;
                long produced = Interlocked.Read(ref partition.NextOffset);
                if (p.FetchOffset < 0 || (batch is null && p.FetchOffset > produced))
                {
                    result.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    ready = true;
                    continue;
                }
                result.LogStartOffset = 0;
                if (batch is null)
                {
                    result.HighWatermark = result.LastStableOffset = produced;
                    continue;
                }
                result.HighWatermark = result.LastStableOffset = p.FetchOffset + batch.RecordCount;
                long limit = returned == 0 ? batch.Bytes.Length : Math.Min(p.PartitionMaxBytes, budget - returned);
                int length = (int)Math.Clamp(limit, 0, batch.Bytes.Length);
                if (length == 0) continue;
                result.Records = new ReplayRecords(batch.Bytes, length, p.FetchOffset);
                returned += length;
                ready = true;
            }
        }
        Interlocked.Add(ref _fetchedBytes, returned);
        return response;
    }

    /// <summary>The first <paramref name="length"/> bytes of a kept batch, written with the fetch offset as base offset (outside the CRC).</summary>
    private sealed class ReplayRecords(byte[] batch, int length, long baseOffset) : RecordsPayload
    {
        public override int Length => length;

        public override void CopyTo(Span<byte> destination)
        {
            batch.AsSpan(0, length).CopyTo(destination);
            if (length >= 8) BinaryPrimitives.WriteInt64BigEndian(destination, baseOffset);
        }
    }
}
