using System.Buffers.Binary;
using Cairn.Protocol.Compression;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;

namespace Cairn.Fuzz;

/// <summary>
/// The record-batch parser: a produce request's records field (batches back to back). Each batch goes through
/// <see cref="RecordBatchValidator"/> as the broker's append does (it reports errors as values and must never throw);
/// every batch it accepts is then walked as a consumer reads it: decompressed, every record and header decoded, both
/// through the allocation-free enumerator and <see cref="RecordBatch.ReadRecords(ReadOnlyMemory{byte}, bool)"/>. There,
/// <see cref="InvalidRecordException"/> (corrupt structure, undecodable compression, wrong magic) is the documented
/// refusal; anything else is a crash. <see cref="RecordBatchIterator"/> walks the same bytes as a fetch response.
/// Every input runs twice: as given, and with the CRCs of its batches recomputed.
/// </summary>
internal static class RecordsTarget
{
    private static readonly RecordBatchLimits Limits = new(1024 * 1024, 1024 * 1024 * 1024);

    public static void Run(ReadOnlySpan<byte> input)
    {
        var data = input.ToArray();
        Check(data);
        // A mutated batch almost never keeps its CRC-32C, which would stop every input at the first check: the same bytes
        // again with each batch's CRC recomputed let the fuzzer reach decompression and the record walk.
        if (FixCrcs(data)) Check(data);
    }

    private static bool FixCrcs(byte[] data)
    {
        bool changed = false;
        int pos = 0;
        while (data.Length - pos >= RecordBatchHeader.Size)
        {
            int batchLength = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(pos + RecordBatchHeader.BatchLengthOffset));
            if (batchLength < RecordBatchIterator.MinBatchLength || batchLength > data.Length - pos - RecordBatchHeader.LogOverhead) break;
            var batch = data.AsSpan(pos, batchLength + RecordBatchHeader.LogOverhead);
            uint crc = Crc32C.Compute(batch[RecordBatchHeader.AttributesOffset..]);
            if (BinaryPrimitives.ReadUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..]) != crc)
            {
                BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..], crc);
                changed = true;
            }
            pos += batch.Length;
        }
        return changed;
    }

    private static void Check(ReadOnlyMemory<byte> data)
    {
        using var scratch = new PooledBufferWriter(4096);
        int pos = 0;
        while (pos < data.Length)
        {
            var v = RecordBatchValidator.ValidateFirst(data.Span[pos..], Limits);
            if (!v.IsValid)
            {
                if (v.Size != 0 || v.Message is null) throw new InvalidOperationException($"invalid batch with size {v.Size} and message {v.Message}");
                break;
            }
            if (v.Size < RecordBatchHeader.Size || v.Size > data.Length - pos) throw new InvalidOperationException($"valid batch of {v.Size} bytes at {pos} of {data.Length}");
            var batch = data.Slice(pos, v.Size);
            Walk(batch, scratch);
            pos += v.Size;
        }

        try
        {
            var iterator = new RecordBatchIterator(data);
            while (iterator.MoveNext())
            {
                var slice = iterator.Current;
                if (slice.IsCrcValid()) Walk(slice.Bytes, scratch);
            }
        }
        catch (InvalidRecordException)
        {
        }
    }

    private static void Walk(ReadOnlyMemory<byte> batch, PooledBufferWriter scratch)
    {
        try
        {
            RecordBatch.Validate(batch, scratch);
            var section = RecordBatch.GetRecordsSection(batch, scratch, out var header);
            long headerBytes = 0;
            foreach (var record in new RecordEnumerator(header, section.Span))
            {
                foreach (var h in record.Headers) headerBytes += h.KeyUtf8.Length + h.Value.Length;
                headerBytes += record.Key.Length + record.Value.Length;
            }
            var records = RecordBatch.ReadRecords(batch);
            if (records.Count != header.RecordCount)
                throw new InvalidOperationException($"batch declares {header.RecordCount} records, {records.Count} decoded");
        }
        catch (InvalidRecordException)
        {
        }
    }
}
