using Cairn.Protocol.Compression;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;

namespace Cairn.Storage;

/// <summary>What the append path learned about one validated batch of a produce request.</summary>
internal struct BatchInfo
{
    public int Position;        // within the request buffer
    public int Size;            // whole batch, header included
    public int LastOffsetDelta;
    public int RecordCount;
    public long MaxTimestamp;
    public long ProducerId;
    public short ProducerEpoch;
    public int BaseSequence;
    public bool IsControl;
    public long BaseOffset;     // assigned under the append lock

    public readonly bool HasSequence => ProducerId >= 0 && BaseSequence >= 0 && !IsControl;
    public readonly long LastOffset => BaseOffset + LastOffsetDelta;
}

/// <summary>
/// Minimal decoding of the records inside one batch, only as far as ListOffsets needs (timestamp and
/// offset delta of each record). Cold path: only used for timestamp lookups.
/// </summary>
internal static class RecordWalker
{
    public enum Outcome { Found, NotFound, Unreadable }

    /// <summary>
    /// Finds the first record with offset &gt;= <paramref name="minOffset"/> whose timestamp is &gt;= <paramref name="target"/>
    /// (or == target when <paramref name="exact"/>). <paramref name="batch"/> is the whole batch, header included;
    /// compressed batches are decompressed with the codecs of Cairn.Protocol.Compression.
    /// </summary>
    public static Outcome Find(ReadOnlySpan<byte> batch, in RecordBatchHeader h, long minOffset, long target, bool exact,
        out long offset, out long timestamp)
    {
        offset = -1;
        timestamp = -1;
        if (h.IsLogAppendTime)
        {
            // Every record of a LogAppendTime batch carries the batch's max timestamp.
            if (exact ? h.MaxTimestamp != target : h.MaxTimestamp < target) return Outcome.NotFound;
            offset = Math.Max(h.BaseOffset, minOffset);
            if (offset > h.LastOffset) return Outcome.NotFound;
            timestamp = h.MaxTimestamp;
            return Outcome.Found;
        }
        var body = batch[RecordBatchHeader.Size..];
        if (h.Compression == CompressionCodec.None)
            return Walk(body, h, minOffset, target, exact, out offset, out timestamp);
        try
        {
            if (!CompressionCodecs.IsDefined(h.Compression)) return Outcome.Unreadable;
            using var writer = new PooledBufferWriter(Math.Max(4096, body.Length * 4));
            CompressionCodecs.Get(h.Compression).Decompress(body, writer);
            return Walk(writer.WrittenSpan, h, minOffset, target, exact, out offset, out timestamp);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Outcome.Unreadable;
        }
    }

    private static Outcome Walk(ReadOnlySpan<byte> records, in RecordBatchHeader h, long minOffset, long target, bool exact,
        out long offset, out long timestamp)
    {
        offset = -1;
        timestamp = -1;
        int p = 0;
        try
        {
            for (int i = 0; i < h.RecordCount; i++)
            {
                if (!TryReadVarint(records, ref p, out long length) || length < 0) return Outcome.Unreadable;
                int start = p;
                if (start + length > records.Length || length < 1) return Outcome.Unreadable;
                p++; // attributes
                if (!TryReadVarint(records, ref p, out long tsDelta)) return Outcome.Unreadable;
                if (!TryReadVarint(records, ref p, out long offDelta)) return Outcome.Unreadable;
                long ts = h.BaseTimestamp + tsDelta;
                long off = h.BaseOffset + offDelta;
                if (off >= minOffset && (exact ? ts == target : ts >= target))
                {
                    offset = off;
                    timestamp = ts;
                    return Outcome.Found;
                }
                p = start + (int)length;
            }
        }
        catch (MalformedMessageException)
        {
            return Outcome.Unreadable;
        }
        return Outcome.NotFound;
    }

    private static bool TryReadVarint(ReadOnlySpan<byte> src, ref int p, out long value)
    {
        value = 0;
        if (p >= src.Length) return false;
        int n = Varint.TryReadUnsigned(src[p..], out ulong raw);
        if (n == 0) return false;
        p += n;
        value = Varint.UnZigZag(raw);
        return true;
    }
}
