using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Cairn.Protocol.Compression;
using Cairn.Protocol.Primitives;

namespace Cairn.Protocol.Records;

/// <summary>
/// Builds one magic v2 record batch the way Kafka clients lay it out: records get offset deltas
/// 0..n-1, baseTimestamp is the first record's timestamp, maxTimestamp the largest (or the log-append
/// time), the records section is compressed as one blob, and the CRC-32C covers attributes..end.
/// Records are encoded as they are appended, so the caller's buffers need not outlive <see cref="Append"/>.
/// Header fields (the properties) are read at <see cref="Build"/> time.
/// </summary>
public sealed class RecordBatchBuilder : IDisposable
{
    /// <summary>Kafka's RecordBatch.NO_TIMESTAMP.</summary>
    public const long NoTimestamp = -1;

    private readonly PooledBufferWriter _records;
    private PooledBufferWriter? _compressed;
    private int _count;
    private long _baseTimestamp;
    private long _maxTimestamp = NoTimestamp;

    public RecordBatchBuilder(CompressionCodec compression = CompressionCodec.None, int initialCapacity = 1024)
    {
        Codec = CompressionCodecs.Get(compression);
        _records = new PooledBufferWriter(Math.Max(initialCapacity, RecordBatchHeader.Size + 64));
        _records.Reserve(RecordBatchHeader.Size); // the header is filled in by Build
    }

    /// <summary>The codec implementation (settable to pick a compression level).</summary>
    public ICompressionCodec Codec { get; set; }
    public CompressionCodec Compression { get => Codec.Codec; set => Codec = CompressionCodecs.Get(value); }
    public long BaseOffset { get; set; }
    /// <summary>-1 (RecordBatch.NO_PARTITION_LEADER_EPOCH) as producers send it.</summary>
    public int PartitionLeaderEpoch { get; set; } = -1;
    public long ProducerId { get; set; } = -1;
    public short ProducerEpoch { get; set; } = -1;
    public int BaseSequence { get; set; } = -1;
    public bool IsTransactional { get; set; }
    public bool IsControl { get; set; }
    /// <summary>
    /// Null (the default) for a CreateTime batch. Set, the batch's timestamp type is LogAppendTime
    /// (attributes bit 3) and this broker time is written as maxTimestamp, which readers give every record.
    /// </summary>
    public long? LogAppendTime { get; set; }

    public int Count => _count;
    /// <summary>Size the batch would have uncompressed, header included.</summary>
    public int UncompressedSizeInBytes => _records.WrittenCount;

    /// <summary>Appends a record with the next offset delta. Null key/value are encoded as length -1.</summary>
    public void Append(long timestamp, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte>? value, IReadOnlyList<RecordHeader>? headers = null) =>
        Append(timestamp, key.HasValue ? key.Value.Span : default, key.HasValue, value.HasValue ? value.Value.Span : default, value.HasValue, headers);

    /// <summary>
    /// Array form, so a null array stays a null key/value: through the implicit byte[] → ReadOnlyMemory
    /// conversion it would become an empty one. Also the overload a literal <c>null</c> picks.
    /// </summary>
    public void Append(long timestamp, byte[]? key, byte[]? value, IReadOnlyList<RecordHeader>? headers = null) =>
        Append(timestamp, key, key is not null, value, value is not null, headers);

    /// <summary>Span form of <see cref="Append(long, ReadOnlyMemory{byte}?, ReadOnlyMemory{byte}?, IReadOnlyList{RecordHeader}?)"/>.</summary>
    public void Append(long timestamp, ReadOnlySpan<byte> key, bool hasKey, ReadOnlySpan<byte> value, bool hasValue,
        IReadOnlyList<RecordHeader>? headers = null)
    {
        if (_count == int.MaxValue) throw new InvalidOperationException("a batch holds at most int.MaxValue records");
        if (_count == 0) _baseTimestamp = timestamp;
        long timestampDelta = timestamp - _baseTimestamp;
        int offsetDelta = _count;

        int headerCount = headers?.Count ?? 0;
        int headersSize = Varint.SizeOfSigned(headerCount);
        for (int i = 0; i < headerCount; i++)
        {
            var h = headers![i];
            if (h.Key is null) throw new ArgumentException($"header {i} has a null key; Kafka header keys are never null", nameof(headers));
            int keyBytes = Encoding.UTF8.GetByteCount(h.Key);
            headersSize += Varint.SizeOfSigned(keyBytes) + keyBytes + BytesFieldSize(h.Value.HasValue, h.Value?.Length ?? 0);
        }

        long bodySize = 1L // attributes
            + Varint.SizeOfSigned(timestampDelta)
            + Varint.SizeOfSigned(offsetDelta)
            + BytesFieldSize(hasKey, key.Length)
            + BytesFieldSize(hasValue, value.Length)
            + headersSize;
        if (bodySize > int.MaxValue - 16) throw new ArgumentException("record too large");
        int total = Varint.SizeOfSigned((int)bodySize) + (int)bodySize;

        var span = _records.GetSpan(total);
        int pos = WriteVarint(span, (int)bodySize);
        span[pos++] = 0; // record attributes: unused, always 0
        pos += Varint.WriteUnsigned(span[pos..], Varint.ZigZag(timestampDelta));
        pos += WriteVarint(span[pos..], offsetDelta);
        pos += WriteBytesField(span[pos..], hasKey, key);
        pos += WriteBytesField(span[pos..], hasValue, value);
        pos += WriteVarint(span[pos..], headerCount);
        for (int i = 0; i < headerCount; i++)
        {
            var h = headers![i];
            int keyBytes = Encoding.UTF8.GetByteCount(h.Key);
            pos += WriteVarint(span[pos..], keyBytes);
            pos += Encoding.UTF8.GetBytes(h.Key, span[pos..]);
            pos += WriteBytesField(span[pos..], h.Value.HasValue, h.Value.HasValue ? h.Value.Value.Span : default);
        }
        if (pos != total) throw new InvalidOperationException($"record size computed as {total} but {pos} bytes written");
        _records.Advance(total);

        _count++;
        if (timestamp > _maxTimestamp) _maxTimestamp = timestamp;
    }

    /// <summary>The finished batch in a new array.</summary>
    public byte[] Build()
    {
        var batch = Finish();
        return batch.ToArray();
    }

    /// <summary>Appends the finished batch to <paramref name="destination"/>; returns its size.</summary>
    public int WriteTo(IBufferWriter<byte> destination)
    {
        var batch = Finish();
        destination.Write(batch);
        return batch.Length;
    }

    /// <summary>Drops the records (keeps the header properties) so the builder and its buffers can be reused.</summary>
    public void Reset()
    {
        _records.Reset();
        _records.Reserve(RecordBatchHeader.Size);
        _count = 0;
        _baseTimestamp = 0;
        _maxTimestamp = NoTimestamp;
    }

    public void Dispose()
    {
        _records.Dispose();
        _compressed?.Dispose();
    }

    private ReadOnlySpan<byte> Finish()
    {
        if (_count == 0) throw new InvalidOperationException("a record batch needs at least one record");

        PooledBufferWriter target;
        if (Codec.Codec == CompressionCodec.None)
        {
            target = _records; // header placeholder already precedes the records
        }
        else
        {
            target = _compressed ??= new PooledBufferWriter(_records.WrittenCount / 2 + RecordBatchHeader.Size);
            target.Reset();
            target.Reserve(RecordBatchHeader.Size);
            Codec.Compress(_records.WrittenSpan[RecordBatchHeader.Size..], target);
        }

        var batch = target.WrittenSpanMutable;
        short attributes = (short)((int)Codec.Codec
            | (LogAppendTime.HasValue ? 0x08 : 0)
            | (IsTransactional ? 0x10 : 0)
            | (IsControl ? 0x20 : 0));
        long maxTimestamp = LogAppendTime ?? _maxTimestamp;

        BinaryPrimitives.WriteInt64BigEndian(batch, BaseOffset);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.BatchLengthOffset..], batch.Length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.PartitionLeaderEpochOffset..], PartitionLeaderEpoch);
        batch[RecordBatchHeader.MagicOffset] = 2;
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..], attributes);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.LastOffsetDeltaOffset..], _count - 1);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.BaseTimestampOffset..], _baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..], maxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.ProducerIdOffset..], ProducerId);
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.ProducerEpochOffset..], ProducerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.BaseSequenceOffset..], BaseSequence);
        BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.RecordCountOffset..], _count);
        // Last, since the CRC covers every field from attributes on.
        BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..], Crc32C.Compute(batch[RecordBatchHeader.AttributesOffset..]));
        return batch;
    }

    private static int BytesFieldSize(bool present, int length) =>
        present ? Varint.SizeOfSigned(length) + length : 1; // -1 is one zig-zag byte

    private static int WriteVarint(Span<byte> dest, int value) => Varint.WriteUnsigned(dest, Varint.ZigZag(value));

    private static int WriteBytesField(Span<byte> dest, bool present, ReadOnlySpan<byte> bytes)
    {
        if (!present) return WriteVarint(dest, -1);
        int n = WriteVarint(dest, bytes.Length);
        bytes.CopyTo(dest[n..]);
        return n + bytes.Length;
    }
}
