using System.Buffers.Binary;
using Cairn.Protocol.Primitives;

namespace Cairn.Protocol.Records;

/// <summary>The in-place edits a broker makes to a batch it accepts; the rest of the batch stays as the producer sent it.</summary>
public static class RecordBatchStamps
{
    /// <summary>
    /// Makes a batch a LogAppendTime batch stamped with <paramref name="logAppendTime"/>: sets the timestamp-type
    /// attribute bit, writes the time as maxTimestamp and recomputes the CRC, which covers both fields.
    /// </summary>
    public static void StampLogAppendTime(Span<byte> batch, long logAppendTime)
    {
        short attrs = BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..]);
        BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..], (short)(attrs | 0x08));
        BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..], logAppendTime);
        BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..], Crc32C.Compute(batch[RecordBatchHeader.AttributesOffset..]));
    }
}
