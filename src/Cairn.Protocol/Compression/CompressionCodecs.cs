using Cairn.Protocol.Records;

namespace Cairn.Protocol.Compression;

/// <summary>The codec for each compression id of a batch's attributes (attributes &amp; 7), with default levels.</summary>
public static class CompressionCodecs
{
    public static ICompressionCodec None { get; } = NoneCodec.Instance;
    public static ICompressionCodec Gzip { get; } = new GzipCodec();
    public static ICompressionCodec Snappy { get; } = new SnappyCodec();
    public static ICompressionCodec Lz4 { get; } = new Lz4Codec();
    public static ICompressionCodec Zstd { get; } = new ZstdCodec();

    /// <exception cref="NotSupportedException">Ids 5-7, which Kafka does not define.</exception>
    public static ICompressionCodec Get(CompressionCodec codec) => codec switch
    {
        CompressionCodec.None => None,
        CompressionCodec.Gzip => Gzip,
        CompressionCodec.Snappy => Snappy,
        CompressionCodec.Lz4 => Lz4,
        CompressionCodec.Zstd => Zstd,
        _ => throw new NotSupportedException($"unknown compression codec id {(int)codec}"),
    };

    public static bool IsDefined(CompressionCodec codec) => codec <= CompressionCodec.Zstd;

    /// <summary>Convenience for tests and cold paths: compresses into a new exact-size array.</summary>
    public static byte[] Compress(this ICompressionCodec codec, ReadOnlySpan<byte> source)
    {
        using var writer = new PooledBufferWriter(Math.Max(256, source.Length / 2));
        codec.Compress(source, writer);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Convenience for tests and cold paths: decompresses into a new exact-size array.</summary>
    public static byte[] Decompress(this ICompressionCodec codec, ReadOnlySpan<byte> source)
    {
        using var writer = new PooledBufferWriter(DecompressedSizeHint(source.Length));
        codec.Decompress(source, writer);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Initial buffer for decompression: records usually compress 2-5x.</summary>
    internal static int DecompressedSizeHint(int compressedLength) =>
        (int)Math.Clamp(compressedLength * 4L, 4096, 16 * 1024 * 1024);
}
