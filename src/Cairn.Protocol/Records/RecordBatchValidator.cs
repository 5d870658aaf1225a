using System.Buffers.Binary;

namespace Cairn.Protocol.Records;

/// <summary>
/// The size limits a batch must fit, as plain values so the validator needs nothing from the log that
/// applies them: <paramref name="MaxBatchBytes"/> is the topic's max.message.bytes, <paramref name="MaxSegmentBytes"/>
/// its segment.bytes (a batch never spans segments).
/// </summary>
public readonly record struct RecordBatchLimits(int MaxBatchBytes, int MaxSegmentBytes)
{
    public static RecordBatchLimits Unlimited => new(int.MaxValue, int.MaxValue);
}

/// <summary>
/// Outcome of <see cref="RecordBatchValidator.ValidateFirst"/>. When <see cref="IsValid"/>, <see cref="Size"/> is the
/// whole batch's length (header included) and <see cref="Header"/> its decoded header; otherwise <see cref="Error"/>
/// is the code a produce response carries and <see cref="Message"/> says why.
/// </summary>
public readonly record struct RecordBatchValidation(ErrorCode Error, int Size, RecordBatchHeader Header, string? Message)
{
    public bool IsValid => Error == ErrorCode.None;

    internal static RecordBatchValidation Fail(ErrorCode error, string message) => new(error, 0, default, message);
}

/// <summary>
/// Checks one magic v2 record batch as a broker must before accepting it: complete, magic 2, a batch length
/// that fits the data, within the size limits, CRC-32C intact, a record count that agrees with lastOffsetDelta
/// (and, uncompressed, fits the bytes) and a known compression codec. Records inside are not decoded. Pure: no allocation on success.
/// </summary>
public static class RecordBatchValidator
{
    /// <summary>
    /// The smallest record in a v2 batch: a one-byte varint each for length, timestamp delta, offset delta, key length (-1),
    /// value length and header count, and the attributes byte.
    /// </summary>
    public const int MinRecordBytes = 7;

    /// <summary>
    /// Validates the batch at the start of <paramref name="data"/> (a produce request's records field holds batches
    /// back to back; the next one starts <see cref="RecordBatchValidation.Size"/> bytes later). Checks run in this
    /// order, the first failure wins: CORRUPT_MESSAGE (fewer bytes than a magic byte), UNSUPPORTED_FOR_MESSAGE_FORMAT
    /// (magic != 2), CORRUPT_MESSAGE (incomplete header, or a batch length below a header or beyond the data),
    /// MESSAGE_TOO_LARGE (&gt; <see cref="RecordBatchLimits.MaxBatchBytes"/>), RECORD_LIST_TOO_LARGE
    /// (&gt; <see cref="RecordBatchLimits.MaxSegmentBytes"/>), CORRUPT_MESSAGE (CRC mismatch), INVALID_RECORD (no records,
    /// or lastOffsetDelta != count - 1, or uncompressed and more records than its bytes hold), UNSUPPORTED_COMPRESSION_TYPE (codec above zstd).
    /// </summary>
    public static RecordBatchValidation ValidateFirst(ReadOnlySpan<byte> data, in RecordBatchLimits limits)
    {
        if (data.Length <= RecordBatchHeader.MagicOffset)
            return RecordBatchValidation.Fail(ErrorCode.CorruptMessage, "incomplete record batch");
        if (data[RecordBatchHeader.MagicOffset] != 2)
            return RecordBatchValidation.Fail(ErrorCode.UnsupportedForMessageFormat,
                $"record batch magic {(sbyte)data[RecordBatchHeader.MagicOffset]} is not supported, only magic 2");
        if (data.Length < RecordBatchHeader.Size)
            return RecordBatchValidation.Fail(ErrorCode.CorruptMessage, "incomplete record batch header");
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(data[RecordBatchHeader.BatchLengthOffset..]);
        if (batchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead || batchLength > data.Length - RecordBatchHeader.LogOverhead)
            return RecordBatchValidation.Fail(ErrorCode.CorruptMessage, $"record batch length {batchLength} does not match the {data.Length} bytes left");
        int size = batchLength + RecordBatchHeader.LogOverhead;
        if (size > limits.MaxBatchBytes)
            return RecordBatchValidation.Fail(ErrorCode.MessageTooLarge, $"record batch of {size} bytes exceeds max.message.bytes {limits.MaxBatchBytes}");
        if (size > limits.MaxSegmentBytes)
            return RecordBatchValidation.Fail(ErrorCode.RecordListTooLarge, $"record batch of {size} bytes exceeds segment.bytes {limits.MaxSegmentBytes}");
        var batch = data[..size];
        if (!RecordBatchHeader.IsCrcValid(batch))
            return RecordBatchValidation.Fail(ErrorCode.CorruptMessage, "record batch CRC mismatch");
        RecordBatchHeader.TryRead(batch, out var h);
        if (h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount - 1)
            return RecordBatchValidation.Fail(ErrorCode.InvalidRecord, $"record batch with {h.RecordCount} records has lastOffsetDelta {h.LastOffsetDelta}");
        // Records are not decoded, but an uncompressed batch cannot hold more records than its bytes can: each takes at least
        // MinRecordBytes. Without this a 61-byte header claiming 2^31-1 records would move the log end that far (Kafka
        // walks the records and finds too few). A compressed batch's count is bounded only by what it decompresses to.
        if (h.Compression == CompressionCodec.None && h.RecordCount > (size - RecordBatchHeader.Size) / MinRecordBytes)
            return RecordBatchValidation.Fail(ErrorCode.InvalidRecord,
                $"record batch claims {h.RecordCount} records but its {size - RecordBatchHeader.Size} bytes of records can hold at most {(size - RecordBatchHeader.Size) / MinRecordBytes}");
        if ((int)h.Compression > (int)CompressionCodec.Zstd)
            return RecordBatchValidation.Fail(ErrorCode.UnsupportedCompressionType, $"unknown compression codec {(int)h.Compression}");
        return new RecordBatchValidation(ErrorCode.None, size, h, null);
    }
}
