using System.Buffers.Binary;
using Cairn.Protocol.Compression;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using static Cairn.Tests.Records.RecordAssert;

namespace Cairn.Tests.Records;

public class RecordBatchCorruptionTests
{
    private static byte[] Batch(CompressionCodec codec = CompressionCodec.None, int records = 3)
    {
        using var builder = new RecordBatchBuilder(codec);
        for (int i = 0; i < records; i++) builder.Append(1000 + i, Utf8($"key {i}"), Utf8($"value {i}"), [new RecordHeader("h", Utf8("x"))]);
        return builder.Build();
    }

    /// <summary>Re-seals a batch after a deliberate structural edit, so only the structure is wrong.</summary>
    private static void FixCrc(byte[] batch) =>
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(17), Crc32C.Compute(batch.AsSpan(21)));

    [Theory]
    [InlineData(CompressionCodec.None)]
    [InlineData(CompressionCodec.Zstd)]
    public void Any_flipped_bit_from_attributes_on_fails_the_crc(CompressionCodec codec)
    {
        var batch = Batch(codec);
        Assert.True(RecordBatchHeader.IsCrcValid(batch));
        for (int i = RecordBatchHeader.AttributesOffset; i < batch.Length; i++)
        {
            var copy = batch.ToArray();
            copy[i] ^= 0x04;
            Assert.False(RecordBatchHeader.IsCrcValid(copy), $"flip at byte {i} went unnoticed");
            var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(copy));
            Assert.Contains("CRC", e.Message);
        }
    }

    [Fact]
    public void A_flipped_stored_crc_fails_the_check()
    {
        var batch = Batch();
        batch[RecordBatchHeader.CrcOffset + 2] ^= 0x80;
        Assert.False(RecordBatchHeader.IsCrcValid(batch));
        Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
    }

    [Fact]
    public void Base_offset_and_leader_epoch_are_outside_the_crc()
    {
        var batch = Batch();
        RecordBatchHeader.WriteBaseOffset(batch, 5_000_000);
        RecordBatchHeader.WritePartitionLeaderEpoch(batch, 12);
        Assert.True(RecordBatchHeader.IsCrcValid(batch));
        Assert.Equal(new long[] { 5_000_000, 5_000_001, 5_000_002 }, RecordBatch.ReadRecords(batch).Select(r => r.Offset));
    }

    [Fact]
    public void Crc_check_can_be_skipped_but_structure_is_still_checked()
    {
        var batch = Batch();
        batch[RecordBatchHeader.CrcOffset] ^= 0xFF;
        Assert.Equal(3, RecordBatch.ReadRecords(batch, verifyCrc: false).Count);
    }

    [Fact]
    public void Fewer_records_than_declared_is_corrupt()
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.RecordCountOffset), 4);
        FixCrc(batch);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
        Assert.Contains("3 of the declared 4", e.Message);
    }

    [Fact]
    public void Bytes_left_after_the_declared_records_are_corrupt()
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.RecordCountOffset), 2);
        FixCrc(batch);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
        Assert.Contains("left in the records section", e.Message);
    }

    [Fact]
    public void Negative_record_count_is_corrupt()
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(RecordBatchHeader.RecordCountOffset), -1);
        FixCrc(batch);
        Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
    }

    [Fact]
    public void Record_length_that_disagrees_with_its_fields_is_corrupt()
    {
        var batch = Batch();
        // First record's length varint is at byte 61; make it claim one byte more (zig-zag +2).
        batch[61] += 2;
        FixCrc(batch);
        Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
    }

    [Fact]
    public void Key_length_past_the_record_end_is_corrupt()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1, Utf8("k"), Utf8("v"));
        var batch = builder.Build();
        // Layout: 61 length, 62 attributes, 63 tsDelta, 64 offsetDelta, 65 key length.
        batch[65] = 0x7E; // key length 63
        FixCrc(batch);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
        Assert.Contains("key length 63", e.Message);
    }

    [Fact]
    public void Null_header_key_is_corrupt()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1, null, null, [new RecordHeader("h", null)]);
        var batch = builder.Build();
        // 61 length, 62 attr, 63 tsDelta, 64 offDelta, 65 key -1, 66 value -1, 67 header count, 68 header key length.
        Assert.Equal(0x02, batch[68]);
        batch[68] = 0x01; // header key length -1
        FixCrc(batch);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
        Assert.Contains("null key", e.Message);
    }

    [Fact]
    public void Undecodable_compressed_section_is_corrupt()
    {
        var batch = Batch(CompressionCodec.Lz4);
        batch[61] ^= 0xFF; // LZ4 frame magic
        FixCrc(batch);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
        Assert.IsType<CompressionException>(e.InnerException);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(7)]
    public void Unknown_compression_id_is_corrupt(short codec)
    {
        var batch = Batch();
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(RecordBatchHeader.AttributesOffset), codec);
        FixCrc(batch);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch));
        Assert.Contains($"codec id {codec}", e.Message);
    }

    [Fact]
    public void Batch_shorter_than_its_declared_length_is_corrupt()
    {
        var batch = Batch();
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch.AsMemory(0, batch.Length - 1)));
        Assert.Contains("declares", e.Message);
        Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(batch.AsMemory(0, 30)));
    }

    [Fact]
    public void Overlong_varint_is_corrupt()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1, null, null);
        var batch = builder.Build();
        // Replace the record by one of length 7 whose offsetDelta varint never ends.
        byte[] record = [0x0E, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        var forged = batch[..61].Concat(record).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(forged.AsSpan(8), forged.Length - 12);
        FixCrc(forged);
        var e = Assert.Throws<CorruptRecordException>(() => RecordBatch.ReadRecords(forged));
        Assert.Contains("varint", e.Message);
    }

    [Theory]
    [InlineData(CompressionCodec.None)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Zstd)]
    public void Random_damage_with_a_fixed_crc_fails_only_with_InvalidRecordException(CompressionCodec codec)
    {
        // The CRC is recomputed after the damage, so the decoder's own checks are all that stand in the way.
        var batch = Batch(codec, records: 5);
        var rng = new Random(3);
        int failures = 0;
        for (int round = 0; round < 2000; round++)
        {
            var bad = batch.ToArray();
            for (int k = rng.Next(1, 3); k > 0; k--) bad[rng.Next(RecordBatchHeader.Size - 4, bad.Length)] = (byte)rng.Next(256);
            FixCrc(bad);
            try
            {
                RecordBatch.ReadRecords(bad);
            }
            catch (InvalidRecordException)
            {
                failures++;
            }
        }
        Assert.True(failures > 100, $"only {failures} of 2000 damaged batches were rejected");
    }

    [Fact]
    public void Validate_checks_the_whole_batch()
    {
        using var scratch = new PooledBufferWriter();
        var good = Batch(CompressionCodec.Snappy);
        Assert.Equal(3, RecordBatch.Validate(good, scratch).RecordCount);

        var bad = Batch();
        BinaryPrimitives.WriteInt32BigEndian(bad.AsSpan(RecordBatchHeader.RecordCountOffset), 2);
        FixCrc(bad);
        Assert.Throws<CorruptRecordException>(() => RecordBatch.Validate(bad, scratch));
    }
}
