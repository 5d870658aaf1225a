using System.Buffers.Binary;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using static Cairn.Tests.Records.RecordAssert;

namespace Cairn.Tests.Records;

public class RecordBatchValidatorTests
{
    private static readonly RecordBatchLimits Limits = RecordBatchLimits.Unlimited;

    private static byte[] Batch(CompressionCodec codec = CompressionCodec.None, int records = 3, long firstTimestamp = 1000)
    {
        using var builder = new RecordBatchBuilder(codec);
        for (int i = 0; i < records; i++) builder.Append(firstTimestamp + i, Utf8($"key {i}"), Utf8($"value {i}"));
        return builder.Build();
    }

    private static void FixCrc(byte[] batch) =>
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), Crc32C.Compute(batch.AsSpan(RecordBatchHeader.AttributesOffset)));

    [Theory]
    [InlineData(CompressionCodec.None)]
    [InlineData(CompressionCodec.Gzip)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Lz4)]
    [InlineData(CompressionCodec.Zstd)]
    public void A_well_formed_batch_is_valid_and_its_header_is_decoded(CompressionCodec codec)
    {
        var batch = Batch(codec, records: 4);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.True(r.IsValid, r.Message);
        Assert.Equal(ErrorCode.None, r.Error);
        Assert.Null(r.Message);
        Assert.Equal(batch.Length, r.Size);
        Assert.Equal(4, r.Header.RecordCount);
        Assert.Equal(3, r.Header.LastOffsetDelta);
        Assert.Equal(1003, r.Header.MaxTimestamp);
        Assert.Equal(codec, r.Header.Compression);
    }

    [Fact]
    public void Batches_back_to_back_are_validated_one_after_the_other()
    {
        var first = Batch(records: 2);
        var second = Batch(records: 5, firstTimestamp: 2000);
        var both = first.Concat(second).ToArray();
        var a = RecordBatchValidator.ValidateFirst(both, Limits);
        Assert.True(a.IsValid, a.Message);
        Assert.Equal(first.Length, a.Size);
        var b = RecordBatchValidator.ValidateFirst(both.AsSpan(a.Size), Limits);
        Assert.True(b.IsValid, b.Message);
        Assert.Equal(second.Length, b.Size);
        Assert.Equal(5, b.Header.RecordCount);
    }

    [Fact]
    public void Every_truncation_of_a_batch_is_corrupt()
    {
        var batch = Batch();
        for (int len = 0; len < batch.Length; len++)
        {
            var r = RecordBatchValidator.ValidateFirst(batch.AsSpan(0, len), Limits);
            Assert.False(r.IsValid, $"a batch cut to {len} of {batch.Length} bytes passed");
            Assert.Equal(ErrorCode.CorruptMessage, r.Error);
        }
    }

    [Fact]
    public void Too_short_for_a_magic_byte_says_incomplete_batch()
    {
        var r = RecordBatchValidator.ValidateFirst(new byte[RecordBatchHeader.MagicOffset], Limits);
        Assert.Equal(ErrorCode.CorruptMessage, r.Error);
        Assert.Equal("incomplete record batch", r.Message);
    }

    [Fact]
    public void Magic_2_with_a_short_header_says_incomplete_header()
    {
        var r = RecordBatchValidator.ValidateFirst(Batch().AsSpan(0, RecordBatchHeader.Size - 1), Limits);
        Assert.Equal(ErrorCode.CorruptMessage, r.Error);
        Assert.Equal("incomplete record batch header", r.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(-1)]
    public void A_magic_other_than_2_is_unsupported(sbyte magic)
    {
        var batch = Batch();
        batch[RecordBatchHeader.MagicOffset] = (byte)magic;
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, r.Error);
        Assert.Contains($"magic {magic}", r.Message);
        // The magic is checked before anything else that needs a whole header.
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, RecordBatchValidator.ValidateFirst(batch.AsSpan(0, RecordBatchHeader.MagicOffset + 1), Limits).Error);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(RecordBatchHeader.Size - RecordBatchHeader.LogOverhead - 1)]
    [InlineData(-5)]
    public void A_batch_length_below_a_header_is_corrupt(int batchLength)
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.BatchLengthOffset), batchLength);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.Equal(ErrorCode.CorruptMessage, r.Error);
        Assert.Contains($"length {batchLength}", r.Message);
    }

    [Fact]
    public void A_batch_length_beyond_the_data_is_corrupt()
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.BatchLengthOffset), batch.Length);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.Equal(ErrorCode.CorruptMessage, r.Error);
        Assert.Equal($"record batch length {batch.Length} does not match the {batch.Length} bytes left", r.Message);
    }

    [Fact]
    public void Size_limits_are_checked_max_message_bytes_first()
    {
        var batch = Batch();
        Assert.True(RecordBatchValidator.ValidateFirst(batch, new RecordBatchLimits(batch.Length, batch.Length)).IsValid);
        var tooLarge = RecordBatchValidator.ValidateFirst(batch, new RecordBatchLimits(batch.Length - 1, batch.Length - 1));
        Assert.Equal(ErrorCode.MessageTooLarge, tooLarge.Error);
        Assert.Equal($"record batch of {batch.Length} bytes exceeds max.message.bytes {batch.Length - 1}", tooLarge.Message);
        var segment = RecordBatchValidator.ValidateFirst(batch, new RecordBatchLimits(int.MaxValue, batch.Length - 1));
        Assert.Equal(ErrorCode.RecordListTooLarge, segment.Error);
        Assert.Contains("segment.bytes", segment.Message);
    }

    [Fact]
    public void A_limit_failure_wins_over_a_bad_crc()
    {
        var batch = Batch();
        batch[^1] ^= 0xFF;
        Assert.Equal(ErrorCode.MessageTooLarge, RecordBatchValidator.ValidateFirst(batch, new RecordBatchLimits(10, int.MaxValue)).Error);
    }

    [Fact]
    public void A_flipped_bit_anywhere_under_the_crc_is_corrupt()
    {
        var batch = Batch(CompressionCodec.Gzip);
        for (int i = RecordBatchHeader.CrcOffset; i < batch.Length; i++)
        {
            var copy = batch.ToArray();
            copy[i] ^= 0x10;
            var r = RecordBatchValidator.ValidateFirst(copy, Limits);
            Assert.Equal(ErrorCode.CorruptMessage, r.Error);
            Assert.Equal("record batch CRC mismatch", r.Message);
        }
    }

    [Fact]
    public void Base_offset_and_leader_epoch_are_not_validated()
    {
        var batch = Batch();
        RecordBatchHeader.WriteBaseOffset(batch, 123_456);
        RecordBatchHeader.WritePartitionLeaderEpoch(batch, 7);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.True(r.IsValid, r.Message);
        Assert.Equal(123_456, r.Header.BaseOffset);
    }

    [Theory]
    [InlineData(0, -1)]
    [InlineData(3, 3)]
    [InlineData(3, 1)]
    [InlineData(-1, -2)]
    public void Record_count_must_agree_with_last_offset_delta(int count, int lastOffsetDelta)
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.RecordCountOffset), count);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.LastOffsetDeltaOffset), lastOffsetDelta);
        FixCrc(batch);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.Equal(ErrorCode.InvalidRecord, r.Error);
        Assert.Equal($"record batch with {count} records has lastOffsetDelta {lastOffsetDelta}", r.Message);
    }

    [Fact]
    public void An_uncompressed_batch_cannot_claim_more_records_than_its_bytes_hold()
    {
        // Found by FrameFuzzTests' author: a header claiming 2^31-1 records with a matching lastOffsetDelta passed, and the
        // log end offset moved by the claimed count. An empty record (key and value null, no headers) takes 7 bytes.
        var batch = Batch(records: 3);
        int recordBytes = batch.Length - RecordBatchHeader.Size;
        Assert.True(RecordBatchValidator.ValidateFirst(batch, Limits).IsValid);
        foreach (int claimed in new[] { recordBytes / RecordBatchValidator.MinRecordBytes + 1, int.MaxValue })
        {
            var forged = (byte[])batch.Clone();
            BinaryPrimitives.WriteInt32BigEndian(forged.AsSpan(RecordBatchHeader.RecordCountOffset), claimed);
            BinaryPrimitives.WriteInt32BigEndian(forged.AsSpan(RecordBatchHeader.LastOffsetDeltaOffset), claimed - 1);
            FixCrc(forged);
            var r = RecordBatchValidator.ValidateFirst(forged, Limits);
            Assert.Equal(ErrorCode.InvalidRecord, r.Error);
            Assert.Contains($"claims {claimed} records", r.Message);
        }
        // The smallest possible records still fit exactly.
        using var builder = new RecordBatchBuilder(CompressionCodec.None);
        for (int i = 0; i < 5; i++) builder.Append(1000, (byte[]?)null, (byte[]?)null);
        var empty = builder.Build();
        Assert.Equal(5 * RecordBatchValidator.MinRecordBytes, empty.Length - RecordBatchHeader.Size);
        Assert.True(RecordBatchValidator.ValidateFirst(empty, Limits).IsValid);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void An_unknown_codec_is_unsupported(int codec)
    {
        var batch = Batch();
        short attrs = BinaryPrimitives.ReadInt16BigEndian(batch.AsSpan(RecordBatchHeader.AttributesOffset));
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(RecordBatchHeader.AttributesOffset), (short)((attrs & ~0x7) | codec));
        FixCrc(batch);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.Equal(ErrorCode.UnsupportedCompressionType, r.Error);
        Assert.Equal($"unknown compression codec {codec}", r.Message);
    }

    [Fact]
    public void Stamping_log_append_time_keeps_the_batch_valid()
    {
        var batch = Batch(CompressionCodec.Lz4);
        RecordBatchStamps.StampLogAppendTime(batch, 99_999);
        var r = RecordBatchValidator.ValidateFirst(batch, Limits);
        Assert.True(r.IsValid, r.Message);
        Assert.True(r.Header.IsLogAppendTime);
        Assert.Equal(99_999, r.Header.MaxTimestamp);
        Assert.Equal(1000, r.Header.BaseTimestamp);
        Assert.Equal(CompressionCodec.Lz4, r.Header.Compression);
        Assert.All(RecordBatch.ReadRecords(batch), rec => Assert.Equal(99_999, rec.Timestamp));
    }
}
