using System.Buffers.Binary;
using Cairn.Protocol.Primitives;

namespace Cairn.Protocol.Records;

public enum CompressionCodec : byte { None = 0, Gzip = 1, Snappy = 2, Lz4 = 3, Zstd = 4 }

/// <summary>
/// The fixed 61-byte header of a magic v2 record batch. Field offsets follow the wire layout;
/// the CRC covers everything from <see cref="AttributesOffset"/> to the end of the batch.
/// </summary>
public readonly record struct RecordBatchHeader(
    long BaseOffset,
    int BatchLength,
    int PartitionLeaderEpoch,
    sbyte Magic,
    uint Crc,
    short Attributes,
    int LastOffsetDelta,
    long BaseTimestamp,
    long MaxTimestamp,
    long ProducerId,
    short ProducerEpoch,
    int BaseSequence,
    int RecordCount)
{
    public const int Size = 61;
    /// <summary>baseOffset (8) + batchLength (4): the part not counted in batchLength.</summary>
    public const int LogOverhead = 12;
    public const int BatchLengthOffset = 8;
    public const int PartitionLeaderEpochOffset = 12;
    public const int MagicOffset = 16;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const int LastOffsetDeltaOffset = 23;
    public const int BaseTimestampOffset = 27;
    public const int MaxTimestampOffset = 35;
    public const int ProducerIdOffset = 43;
    public const int ProducerEpochOffset = 51;
    public const int BaseSequenceOffset = 53;
    public const int RecordCountOffset = 57;

    /// <summary>Total size of the batch on the wire, header included.</summary>
    public int TotalSize => BatchLength + LogOverhead;
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long NextOffset => LastOffset + 1;
    public CompressionCodec Compression => (CompressionCodec)(Attributes & 0x7);
    public bool IsLogAppendTime => (Attributes & 0x8) != 0;
    public bool IsTransactional => (Attributes & 0x10) != 0;
    public bool IsControl => (Attributes & 0x20) != 0;
    public bool HasProducerId => ProducerId >= 0;

    /// <summary>
    /// Reads the first 17 bytes (enough for offset, length and magic) and, for magic 2, the rest.
    /// Returns false if <paramref name="data"/> is shorter than what is needed.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out RecordBatchHeader header)
    {
        header = default;
        if (data.Length < MagicOffset + 1) return false;
        long baseOffset = BinaryPrimitives.ReadInt64BigEndian(data);
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(data[BatchLengthOffset..]);
        int leaderEpoch = BinaryPrimitives.ReadInt32BigEndian(data[PartitionLeaderEpochOffset..]);
        sbyte magic = (sbyte)data[MagicOffset];
        if (magic != 2)
        {
            header = new RecordBatchHeader(baseOffset, batchLength, leaderEpoch, magic, 0, 0, 0, 0, 0, -1, -1, -1, 0);
            return true;
        }
        if (data.Length < Size) return false;
        header = new RecordBatchHeader(
            baseOffset, batchLength, leaderEpoch, magic,
            BinaryPrimitives.ReadUInt32BigEndian(data[CrcOffset..]),
            BinaryPrimitives.ReadInt16BigEndian(data[AttributesOffset..]),
            BinaryPrimitives.ReadInt32BigEndian(data[LastOffsetDeltaOffset..]),
            BinaryPrimitives.ReadInt64BigEndian(data[BaseTimestampOffset..]),
            BinaryPrimitives.ReadInt64BigEndian(data[MaxTimestampOffset..]),
            BinaryPrimitives.ReadInt64BigEndian(data[ProducerIdOffset..]),
            BinaryPrimitives.ReadInt16BigEndian(data[ProducerEpochOffset..]),
            BinaryPrimitives.ReadInt32BigEndian(data[BaseSequenceOffset..]),
            BinaryPrimitives.ReadInt32BigEndian(data[RecordCountOffset..]));
        return true;
    }

    /// <summary>Checks the stored CRC against the batch bytes (the whole batch, header included).</summary>
    public static bool IsCrcValid(ReadOnlySpan<byte> batch)
    {
        if (batch.Length < Size) return false;
        uint stored = BinaryPrimitives.ReadUInt32BigEndian(batch[CrcOffset..]);
        return Crc32C.Compute(batch[AttributesOffset..]) == stored;
    }

    /// <summary>Writes the broker-assigned base offset; outside the CRC, so the batch stays valid.</summary>
    public static void WriteBaseOffset(Span<byte> batch, long baseOffset) => BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);

    public static void WritePartitionLeaderEpoch(Span<byte> batch, int epoch) =>
        BinaryPrimitives.WriteInt32BigEndian(batch[PartitionLeaderEpochOffset..], epoch);
}
