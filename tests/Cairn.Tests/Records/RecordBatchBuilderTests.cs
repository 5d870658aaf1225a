using System.Buffers;
using System.Buffers.Binary;
using Cairn.Protocol.Compression;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using static Cairn.Tests.Records.RecordAssert;

namespace Cairn.Tests.Records;

public class RecordBatchBuilderTests
{
    public static TheoryData<CompressionCodec> AllCodecs =>
        [CompressionCodec.None, CompressionCodec.Gzip, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd];

    /// <summary>The expected batch written out field by field from the v2 layout, with its CRC over [21..].</summary>
    private static byte[] ExpectedBatch(long baseOffset, int leaderEpoch, short attributes, int lastOffsetDelta,
        long baseTimestamp, long maxTimestamp, long producerId, short producerEpoch, int baseSequence, int count, byte[] records)
    {
        var b = new byte[61 + records.Length];
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(0), baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), b.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), leaderEpoch);
        b[16] = 2;
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(21), attributes);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(23), lastOffsetDelta);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(27), baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(35), maxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(43), producerId);
        BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(51), producerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(53), baseSequence);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(57), count);
        records.CopyTo(b, 61);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(17), Crc32C.Compute(b.AsSpan(21)));
        return b;
    }

    [Fact]
    public void Single_record_batch_has_the_exact_v2_layout()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1000, Utf8("k"), Utf8("v"));
        var batch = builder.Build();

        byte[] record =
        [
            0x10,             // length 8 (zig-zag)
            0x00,             // attributes
            0x00,             // timestampDelta 0
            0x00,             // offsetDelta 0
            0x02, (byte)'k',  // key length 1
            0x02, (byte)'v',  // value length 1
            0x00,             // 0 headers
        ];
        var expected = ExpectedBatch(0, -1, 0, 0, 1000, 1000, -1, -1, -1, 1, record);
        Assert.Equal(expected, batch);
        Assert.Equal(70, batch.Length);
    }

    [Fact]
    public void Null_key_headers_and_deltas_have_the_exact_layout()
    {
        using var builder = new RecordBatchBuilder
        {
            BaseOffset = 100,
            PartitionLeaderEpoch = 7,
            ProducerId = 4000,
            ProducerEpoch = 3,
            BaseSequence = 42,
            IsTransactional = true,
        };
        builder.Append(5000, null, Utf8("a"), [new RecordHeader("h", null)]);
        builder.Append(4990, Utf8(""), null);

        byte[] records =
        [
            // record 0: body = attr, tsDelta 0, offDelta 0, key -1, value "a", 1 header ("h", null) = 10 bytes
            0x14, 0x00, 0x00, 0x00, 0x01, 0x02, (byte)'a', 0x02, 0x02, (byte)'h', 0x01,
            // record 1: tsDelta -10 (zig-zag 19), offDelta 1, empty key, null value, 0 headers = 6 bytes
            0x0C, 0x00, 0x13, 0x02, 0x00, 0x01, 0x00,
        ];
        var expected = ExpectedBatch(100, 7, 0x10, 1, 5000, 5000, 4000, 3, 42, 2, records);
        Assert.Equal(expected, builder.Build());
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Round_trips_null_empty_and_headers_with_every_codec(CompressionCodec codec)
    {
        var inputs = new InputRecord[]
        {
            new(1_700_000_000_000, null, Utf8("null key"), []),
            new(1_700_000_000_005, [], Utf8("empty key"), []),
            new(1_700_000_000_001, Utf8("key"), null, []),
            new(1_700_000_000_002, Utf8("key"), [], []),
            new(1_700_000_000_003, null, null, [("h-null", null), ("h-empty", []), ("h", Utf8("v")), ("ünïcödé", Utf8("ü"))]),
            new(1_699_999_999_000, Utf8(new string('x', 300)), Utf8(new string('y', 20_000)), [("", Utf8("empty header key"))]),
        };
        using var builder = new RecordBatchBuilder(codec) { BaseOffset = 1234 };
        foreach (var r in inputs) r.AppendTo(builder);
        var batch = builder.Build();

        var header = RecordBatch.ReadHeader(batch);
        Assert.Equal(codec, header.Compression);
        Assert.Equal(inputs.Length, header.RecordCount);
        Assert.Equal(inputs.Length - 1, header.LastOffsetDelta);
        Assert.Equal(1_700_000_000_000, header.BaseTimestamp);
        Assert.Equal(1_700_000_000_005, header.MaxTimestamp);
        Assert.Equal(batch.Length, header.TotalSize);
        Assert.True(RecordBatchHeader.IsCrcValid(batch));

        var records = RecordBatch.ReadRecords(batch);
        Assert.Equal(inputs.Length, records.Count);
        for (int i = 0; i < inputs.Length; i++) Matches(inputs[i], records[i], 1234 + i);

        // The same through the allocation-free path.
        using var scratch = new PooledBufferWriter();
        var section = RecordBatch.GetRecordsSection(batch, scratch, out var h2);
        int n = 0;
        foreach (var view in new RecordEnumerator(h2, section.Span))
        {
            var input = inputs[n];
            Assert.Equal(1234 + n, view.Offset);
            Assert.Equal(input.Timestamp, view.Timestamp);
            Assert.Equal(input.Key is not null, view.HasKey);
            Assert.Equal(input.Key ?? [], view.Key.ToArray());
            Assert.Equal(input.Value is not null, view.HasValue);
            Assert.Equal(input.Value ?? [], view.Value.ToArray());
            int hi = 0;
            foreach (var h in view.Headers)
            {
                Assert.Equal(input.Headers[hi].Key, h.Key);
                Assert.Equal(input.Headers[hi].Value is not null, h.HasValue);
                Assert.Equal(input.Headers[hi].Value ?? [], h.Value.ToArray());
                hi++;
            }
            Assert.Equal(input.Headers.Length, hi);
            n++;
        }
        Assert.Equal(inputs.Length, n);
    }

    [Theory]
    [InlineData(CompressionCodec.Gzip)]
    [InlineData(CompressionCodec.Snappy)]
    [InlineData(CompressionCodec.Lz4)]
    [InlineData(CompressionCodec.Zstd)]
    public void Compressed_batch_keeps_the_header_plain_and_compresses_the_records_section(CompressionCodec codec)
    {
        using var plain = new RecordBatchBuilder();
        using var packed = new RecordBatchBuilder(codec);
        for (int i = 0; i < 100; i++)
        {
            plain.Append(1000 + i, Utf8($"key-{i}"), Utf8($"value value value value {i}"));
            packed.Append(1000 + i, Utf8($"key-{i}"), Utf8($"value value value value {i}"));
        }
        var p = plain.Build();
        var c = packed.Build();
        Assert.True(c.Length < p.Length);
        // The records section, decompressed, is exactly the uncompressed batch's records section.
        Assert.Equal(p[61..], CompressionCodecs.Get(codec).Decompress(c.AsSpan(61)));
        // Headers differ only in batchLength, CRC and the codec bits of attributes.
        Assert.Equal(p[23..61], c[23..61]);
        Assert.Equal((short)codec, BinaryPrimitives.ReadInt16BigEndian(c.AsSpan(21)));
    }

    [Fact]
    public void Null_and_empty_stay_distinct_through_every_Append_overload()
    {
        byte[]? nullArray = null;
        ReadOnlyMemory<byte>? nullMemory = null;
        ReadOnlyMemory<byte> emptyMemory = ReadOnlyMemory<byte>.Empty;
        using var builder = new RecordBatchBuilder();
        builder.Append(1, nullArray, Array.Empty<byte>(), [new RecordHeader("a", nullArray), new RecordHeader("b", Array.Empty<byte>())]);
        builder.Append(2, nullMemory, emptyMemory, [new RecordHeader("a", nullMemory), new RecordHeader("b", emptyMemory)]);
        builder.Append(3, ReadOnlySpan<byte>.Empty, hasKey: false, ReadOnlySpan<byte>.Empty, hasValue: true);

        var records = RecordBatch.ReadRecords(builder.Build());
        foreach (var r in records)
        {
            Assert.Null(r.Key);
            Assert.NotNull(r.Value);
            Assert.Equal(0, r.Value.Value.Length);
        }
        foreach (var r in records.Take(2))
        {
            Assert.Null(r.Headers[0].Value);
            Assert.NotNull(r.Headers[1].Value);
        }
    }

    [Fact]
    public void Header_flags_follow_the_properties()
    {
        using var builder = new RecordBatchBuilder(CompressionCodec.Lz4)
        {
            IsTransactional = true,
            IsControl = true,
            LogAppendTime = 9_999,
        };
        builder.Append(10, null, Utf8("x"));
        builder.Append(20, null, Utf8("y"));
        var batch = builder.Build();
        var header = RecordBatch.ReadHeader(batch);
        Assert.Equal(0x3B, header.Attributes); // lz4 (3) | log append time (8) | transactional (16) | control (32)
        Assert.True(header.IsTransactional);
        Assert.True(header.IsControl);
        Assert.True(header.IsLogAppendTime);
        Assert.Equal(10, header.BaseTimestamp);
        Assert.Equal(9_999, header.MaxTimestamp);
        // With LogAppendTime every record carries the broker's time.
        Assert.All(RecordBatch.ReadRecords(batch), r => Assert.Equal(9_999, r.Timestamp));
    }

    [Fact]
    public void Negative_timestamp_deltas_round_trip()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(1_000_000, null, Utf8("a"));
        builder.Append(0, null, Utf8("b"));
        builder.Append(-1, null, Utf8("c"));
        var header = RecordBatch.ReadHeader(builder.Build());
        Assert.Equal(1_000_000, header.BaseTimestamp);
        Assert.Equal(1_000_000, header.MaxTimestamp);
        Assert.Equal(new long[] { 1_000_000, 0, -1 }, RecordBatch.ReadRecords(builder.Build()).Select(r => r.Timestamp));
    }

    [Fact]
    public void Reset_reuses_the_builder_for_a_new_batch()
    {
        using var builder = new RecordBatchBuilder(CompressionCodec.Zstd);
        builder.Append(1, Utf8("first"), Utf8("batch"));
        builder.Append(2, Utf8("first"), Utf8("batch"));
        var first = builder.Build();
        builder.Reset();
        builder.Append(50, Utf8("second"), null);
        var second = builder.Build();

        Assert.Equal(2, RecordBatch.ReadRecords(first).Count);
        var records = RecordBatch.ReadRecords(second);
        var only = Assert.Single(records);
        Assert.Equal(50, only.Timestamp);
        Assert.Equal(0, only.Offset);
        Assert.Null(only.Value);

        using var fresh = new RecordBatchBuilder(CompressionCodec.Zstd);
        fresh.Append(50, Utf8("second"), null);
        Assert.Equal(fresh.Build(), second);
    }

    [Fact]
    public void WriteTo_appends_the_same_bytes_as_Build()
    {
        using var builder = new RecordBatchBuilder(CompressionCodec.Snappy);
        builder.Append(1, Utf8("k"), Utf8("v"));
        using var writer = new PooledBufferWriter(8);
        writer.Write("xx"u8);
        int n = builder.WriteTo(writer);
        Assert.Equal(builder.Build(), writer.WrittenSpan[2..].ToArray());
        Assert.Equal(n + 2, writer.WrittenCount);
    }

    [Fact]
    public void Building_an_empty_batch_is_refused()
    {
        using var builder = new RecordBatchBuilder();
        Assert.Throws<InvalidOperationException>(() => builder.Build());
    }

    [Fact]
    public void Null_header_key_is_refused()
    {
        using var builder = new RecordBatchBuilder();
        Assert.Throws<ArgumentException>(() => builder.Append(1, null, null, [new RecordHeader(null!, null)]));
        Assert.Equal(0, builder.Count);
    }

    [Fact]
    public void Large_records_use_multi_byte_varints()
    {
        var big = new byte[3 * 1024 * 1024];
        new Random(5).NextBytes(big);
        using var builder = new RecordBatchBuilder(CompressionCodec.Lz4);
        builder.Append(long.MaxValue / 2, big, big[..1000]);
        var record = Assert.Single(RecordBatch.ReadRecords(builder.Build()));
        BytesEqual(big, record.Key);
        BytesEqual(big[..1000], record.Value);
    }
}
