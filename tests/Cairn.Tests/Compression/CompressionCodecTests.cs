using System.Buffers;
using System.Buffers.Binary;
using Cairn.Protocol.Compression;
using Cairn.Protocol.Records;

namespace Cairn.Tests.Compression;

public class CompressionCodecTests
{
    public static TheoryData<CompressionCodec> AllCodecs =>
        [CompressionCodec.None, CompressionCodec.Gzip, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd];

    public static TheoryData<CompressionCodec> RealCodecs =>
        [CompressionCodec.Gzip, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd];

    /// <summary>Half text-like (compressible), half random, so both codec paths get exercised.</summary>
    private static byte[] Sample(int size, int seed = 42)
    {
        var data = new byte[size];
        var rng = new Random(seed);
        rng.NextBytes(data.AsSpan(size / 2));
        var words = "kafka record batch offset producer consumer "u8;
        for (int i = 0; i < size / 2; i++) data[i] = words[(i * 7 + i / 13) % words.Length];
        return data;
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Get_returns_the_codec_for_the_id(CompressionCodec id) =>
        Assert.Equal(id, CompressionCodecs.Get(id).Codec);

    [Fact]
    public void Get_rejects_undefined_ids()
    {
        Assert.Throws<NotSupportedException>(() => CompressionCodecs.Get((CompressionCodec)5));
        Assert.Throws<NotSupportedException>(() => CompressionCodecs.Get((CompressionCodec)7));
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Round_trips_empty_input(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var compressed = codec.Compress([]);
        Assert.Empty(codec.Decompress(compressed));
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Round_trips_small_input(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var data = "hello, hello, hello kafka"u8.ToArray();
        Assert.Equal(data, codec.Decompress(codec.Compress(data)));
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Round_trips_one_mebibyte(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var data = Sample(1 << 20);
        var compressed = codec.Compress(data);
        if (id != CompressionCodec.None)
            Assert.True(compressed.Length < data.Length * 3 / 4, $"{id} compressed 1 MiB to only {compressed.Length} bytes");
        Assert.Equal(data, codec.Decompress(compressed));
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Decompress_appends_after_existing_content(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var data = Sample(200_000);
        using var writer = new PooledBufferWriter(16);
        writer.Write("prefix"u8);
        codec.Decompress(codec.Compress(data), writer);
        Assert.Equal("prefix"u8.ToArray().Concat(data).ToArray(), writer.WrittenSpan.ToArray());
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Truncated_input_is_reported(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var compressed = codec.Compress(Sample(100_000));
        var truncated = compressed.AsSpan(0, compressed.Length - 9).ToArray();
        Assert.Throws<CompressionException>(() => codec.Decompress(truncated));
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Garbage_input_is_reported(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var garbage = new byte[300];
        new Random(7).NextBytes(garbage);
        garbage[0] = 0xFF; // not a gzip/lz4/zstd magic, and a snappy varint that claims far more than 300 bytes
        garbage[1] = 0xFF;
        garbage[2] = 0xFF;
        Assert.Throws<CompressionException>(() => codec.Decompress(garbage));
    }

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Empty_compressed_input_is_reported(CompressionCodec id) =>
        Assert.Throws<CompressionException>(() => CompressionCodecs.Get(id).Decompress([]));

    [Theory]
    [MemberData(nameof(RealCodecs))]
    public void Corrupted_input_fails_only_with_CompressionException(CompressionCodec id)
    {
        var codec = CompressionCodecs.Get(id);
        var compressed = codec.Compress(Sample(20_000));
        var rng = new Random(11);
        for (int round = 0; round < 500; round++)
        {
            var bad = compressed.ToArray();
            for (int k = rng.Next(1, 4); k > 0; k--) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
            var input = rng.Next(4) == 0 ? bad[..rng.Next(bad.Length)] : bad;
            try
            {
                codec.Decompress(input);
            }
            catch (CompressionException)
            {
                // expected for most corruptions; anything else fails the test
            }
        }
    }

    [Fact]
    public void Codecs_are_safe_to_use_from_many_threads()
    {
        var inputs = Enumerable.Range(0, 8).Select(i => Sample(50_000 + i * 1000, seed: i)).ToArray();
        Parallel.For(0, 64, i =>
        {
            var codec = CompressionCodecs.Get((CompressionCodec)(1 + i % 4));
            var data = inputs[i % inputs.Length];
            Assert.Equal(data, codec.Decompress(codec.Compress(data)));
        });
    }

    // ---- snappy framing ----

    /// <summary>Raw snappy block for "hello": varint length 5, then a literal tag ((5-1) &lt;&lt; 2) and the bytes.</summary>
    private static readonly byte[] RawHello = [0x05, 0x10, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o'];

    private static byte[] XerialHeader()
    {
        var h = new byte[16];
        byte[] magic = [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
        magic.CopyTo(h, 0);
        BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(8), 1);
        BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(12), 1);
        return h;
    }

    private static byte[] XerialChunk(byte[] block)
    {
        var c = new byte[4 + block.Length];
        BinaryPrimitives.WriteInt32BigEndian(c, block.Length);
        block.CopyTo(c, 4);
        return c;
    }

    [Fact]
    public void Snappy_decodes_a_hand_made_raw_block() =>
        Assert.Equal("hello"u8.ToArray(), CompressionCodecs.Snappy.Decompress(RawHello));

    [Fact]
    public void Snappy_decodes_a_hand_made_xerial_frame_with_two_chunks()
    {
        var framed = XerialHeader().Concat(XerialChunk(RawHello)).Concat(XerialChunk(RawHello)).ToArray();
        Assert.Equal("hellohello"u8.ToArray(), CompressionCodecs.Snappy.Decompress(framed));
    }

    [Fact]
    public void Snappy_decodes_concatenated_xerial_streams()
    {
        var one = XerialHeader().Concat(XerialChunk(RawHello)).ToArray();
        Assert.Equal("hellohello"u8.ToArray(), CompressionCodecs.Snappy.Decompress(one.Concat(one).ToArray()));
    }

    [Fact]
    public void Snappy_decodes_a_raw_block_from_the_encoder()
    {
        var data = Sample(100_000);
        Assert.Equal(data, CompressionCodecs.Snappy.Decompress(IronSnappy.Snappy.Encode(data)));
    }

    [Fact]
    public void Snappy_encodes_xerial_frames_with_32_KiB_blocks_like_the_java_client()
    {
        var data = Sample(100_000);
        var framed = CompressionCodecs.Snappy.Compress(data);
        Assert.Equal(XerialHeader(), framed[..16]);

        // Walk the chunks: each must be a raw block of exactly the next 32 KiB (the last one shorter).
        int pos = 16, decoded = 0, chunks = 0;
        while (pos < framed.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(framed.AsSpan(pos));
            var block = IronSnappy.Snappy.Decode(framed.AsSpan(pos + 4, len));
            int expected = Math.Min(32 * 1024, data.Length - decoded);
            Assert.Equal(data.AsSpan(decoded, expected).ToArray(), block);
            decoded += block.Length;
            pos += 4 + len;
            chunks++;
        }
        Assert.Equal(data.Length, decoded);
        Assert.Equal(4, chunks); // 3 full blocks of 32768 + 1696
    }

    [Fact]
    public void Snappy_rejects_a_block_claiming_an_impossible_length_before_allocating_it()
    {
        // Varint 0x7FFFFFFF then one literal byte: the decoder would try to allocate 2 GiB.
        byte[] bomb = [0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00, 0x41];
        var e = Assert.Throws<CompressionException>(() => CompressionCodecs.Snappy.Decompress(bomb));
        Assert.Contains("cannot hold", e.Message);
    }

    [Fact]
    public void Snappy_accepts_the_densest_possible_block()
    {
        var zeros = new byte[1 << 20];
        var block = IronSnappy.Snappy.Encode(zeros);
        Assert.True(block.Length * 20 < zeros.Length, $"expected ~21x expansion, got {zeros.Length / (double)block.Length:F1}x");
        Assert.Equal(zeros, CompressionCodecs.Snappy.Decompress(block));
    }

    [Fact]
    public void Snappy_rejects_a_xerial_chunk_longer_than_the_input()
    {
        var framed = XerialHeader().Concat(XerialChunk(RawHello)).ToArray();
        BinaryPrimitives.WriteInt32BigEndian(framed.AsSpan(16), 100);
        var e = Assert.Throws<CompressionException>(() => CompressionCodecs.Snappy.Decompress(framed));
        Assert.Contains("xerial chunk", e.Message);
    }

    // ---- levels and native interop details ----

    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    public void Gzip_levels_round_trip(int level)
    {
        var codec = new GzipCodec(level);
        var data = Sample(64_000);
        Assert.Equal(data, codec.Decompress(codec.Compress(data)));
    }

    [Theory]
    [InlineData(6)] // a byte of the trailer's CRC-32
    [InlineData(2)] // a byte of the trailer's size
    public void Gzip_detects_a_corrupt_trailer(int fromEnd)
    {
        var compressed = CompressionCodecs.Gzip.Compress(Sample(10_000));
        compressed[^fromEnd] ^= 0x01;
        Assert.Throws<CompressionException>(() => CompressionCodecs.Gzip.Decompress(compressed));
    }

    [Fact]
    public void Gzip_detects_truncation_wherever_the_stream_is_cut()
    {
        var data = Sample(50_000);
        var compressed = CompressionCodecs.Gzip.Compress(data);
        for (int cut = 1; cut < compressed.Length - 18; cut += 97)
        {
            var e = Assert.Throws<CompressionException>(() => CompressionCodecs.Gzip.Decompress(compressed.AsSpan(0, compressed.Length - cut)));
            Assert.Contains("gzip", e.Message);
        }
    }

    [Fact]
    public void Gzip_empty_input_compresses_to_a_complete_member() =>
        // 10-byte header, an empty final deflate block, zero CRC and size: what gzip(1) would accept.
        Assert.Equal(20, CompressionCodecs.Gzip.Compress([]).Length);

    [Fact]
    public void Gzip_output_has_the_gzip_magic() =>
        Assert.Equal(new byte[] { 0x1F, 0x8B }, CompressionCodecs.Gzip.Compress("x"u8)[..2]);

    [Fact]
    public void Lz4_output_is_a_frame_with_independent_64KB_blocks()
    {
        var frame = CompressionCodecs.Lz4.Compress(Sample(1000));
        Assert.Equal(0x184D2204u, BinaryPrimitives.ReadUInt32LittleEndian(frame)); // LZ4 frame magic
        byte flg = frame[4], bd = frame[5];
        Assert.Equal(0b01, flg >> 6);       // frame version 01
        Assert.Equal(1, (flg >> 5) & 1);    // block independence, as the Java client writes
        Assert.Equal(0, (flg >> 3) & 1);    // no content size
        Assert.Equal(4, (bd >> 4) & 7);     // 64 KB max block size
    }

    [Fact]
    public void Lz4_high_compression_level_round_trips()
    {
        var codec = new Lz4Codec(level: 9);
        var data = Sample(300_000);
        Assert.Equal(data, codec.Decompress(codec.Compress(data)));
    }

    [Fact]
    public void Lz4_decodes_concatenated_frames()
    {
        var a = Sample(70_000, 1);
        var b = Sample(10_000, 2);
        var both = CompressionCodecs.Lz4.Compress(a).Concat(CompressionCodecs.Lz4.Compress(b)).ToArray();
        Assert.Equal(a.Concat(b).ToArray(), CompressionCodecs.Lz4.Decompress(both));
    }

    [Fact]
    public void Lz4_recovers_after_a_corrupt_input_on_the_same_thread()
    {
        var good = CompressionCodecs.Lz4.Compress(Sample(5000));
        var bad = good.ToArray();
        bad[4] ^= 0xFF; // frame descriptor flags: header checksum no longer matches
        Assert.Throws<CompressionException>(() => CompressionCodecs.Lz4.Decompress(bad));
        Assert.Equal(Sample(5000), CompressionCodecs.Lz4.Decompress(good));
    }

    [Fact]
    public void Zstd_decodes_concatenated_frames()
    {
        var a = Sample(150_000, 3);
        var b = Sample(1, 4);
        var both = CompressionCodecs.Zstd.Compress(a).Concat(CompressionCodecs.Zstd.Compress(b)).ToArray();
        Assert.Equal(a.Concat(b).ToArray(), CompressionCodecs.Zstd.Decompress(both));
    }

    // Outputs of the reference command-line tools, so decoding is checked against other encoders:
    //   printf 'hello zstd hello zstd hello zstd hello zstd' | zstd --no-content-size   (zstd 1.5.4)
    //   printf 'hello lz4 hello lz4 hello lz4 hello lz4' | lz4     (lz4 1.9.4: linked blocks, content checksum)
    //   printf 'hello gzip hello gzip' | gzip -n
    [Theory]
    [InlineData(CompressionCodec.Zstd, "28b52ffd04008d00005868656c6c6f207a737464200100c68b1799e54d0b", "hello zstd hello zstd hello zstd hello zstd")]
    [InlineData(CompressionCodec.Lz4, "04224d186440a714000000af68656c6c6f206c7a34200a0005506f206c7a34000000004eac6066", "hello lz4 hello lz4 hello lz4 hello lz4")]
    [InlineData(CompressionCodec.Gzip, "1f8b0800000000000003cb48cdc9c95748afca2c50c8803301ac5ff12715000000", "hello gzip hello gzip")]
    public void Decodes_output_of_the_reference_tools(CompressionCodec id, string hex, string expected) =>
        Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(CompressionCodecs.Get(id).Decompress(Convert.FromHexString(hex))));

    [Fact]
    public void Zstd_reports_a_truncated_frame_without_content_size()
    {
        var frame = Convert.FromHexString("28b52ffd04008d00005868656c6c6f207a737464200100c68b1799e54d0b");
        Assert.Throws<CompressionException>(() => CompressionCodecs.Zstd.Decompress(frame.AsSpan(0, frame.Length - 4)));
    }

    [Fact]
    public void Zstd_recovers_after_a_corrupt_input_on_the_same_thread()
    {
        var good = CompressionCodecs.Zstd.Compress(Sample(5000));
        var bad = good.ToArray();
        bad[0] ^= 0xFF; // frame magic
        var e = Assert.Throws<CompressionException>(() => CompressionCodecs.Zstd.Decompress(bad));
        Assert.Contains("zstd", e.Message);
        Assert.Equal(Sample(5000), CompressionCodecs.Zstd.Decompress(good));
    }

    [Fact]
    public void Zstd_levels_round_trip()
    {
        var data = Sample(100_000);
        foreach (var level in new[] { 1, 19 })
        {
            var codec = new ZstdCodec(level);
            Assert.Equal(data, codec.Decompress(codec.Compress(data)));
        }
    }
}
