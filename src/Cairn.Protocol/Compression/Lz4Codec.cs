using System.Buffers;
using System.Buffers.Binary;
using Cairn.Protocol.Records;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;

namespace Cairn.Protocol.Compression;

/// <summary>
/// LZ4 frame format (not the raw block format), as Kafka v2 batches use, through the managed
/// K4os.Compression.LZ4 port. Compression writes what the Java client writes: 64 KB independent blocks,
/// no content size, no checksums. Decoding takes any valid frame (linked blocks, checksums, as the lz4
/// tool and librdkafka may write), concatenated frames and skippable frames, as liblz4 does.
/// </summary>
public sealed class Lz4Codec : ICompressionCodec
{
    private const uint FrameMagic = 0x184D2204;
    private const uint SkippableMagicMask = 0xFFFFFFF0, SkippableMagic = 0x184D2A50;
    private readonly LZ4EncoderSettings _settings;

    /// <param name="level">lz4 level: below 3 (liblz4's LZ4HC minimum) the fast compressor, 3-12 LZ4HC.</param>
    public Lz4Codec(int level = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 12);
        _settings = new LZ4EncoderSettings
        {
            ChainBlocks = false,
            BlockSize = 64 * 1024,
            ContentChecksum = false,
            BlockChecksum = false,
            CompressionLevel = level < (int)LZ4Level.L03_HC ? LZ4Level.L00_FAST : (LZ4Level)level,
        };
    }

    public CompressionCodec Codec => CompressionCodec.Lz4;

    public void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination) =>
        LZ4Frame.Encode(source, destination, _settings);

    public void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        if (source.IsEmpty) throw new CompressionException("lz4: empty input");
        // LZ4Frame.Decode stops after one frame; Kafka batches hold one, but concatenated frames are valid LZ4.
        int pos = 0;
        while (pos < source.Length)
        {
            var rest = source[pos..];
            int length = FrameLength(rest, pos, out bool skippable);
            if (!skippable) DecodeFrame(rest[..length], destination);
            pos += length;
        }
    }

    private static void DecodeFrame(ReadOnlySpan<byte> frame, IBufferWriter<byte> destination)
    {
        try
        {
            LZ4Frame.Decode(frame, destination);
        }
        catch (Exception e) when (e is not (CompressionException or OutOfMemoryException))
        {
            // The decoder reports bad descriptors, bad blocks and truncation with assorted exception types.
            throw new CompressionException($"lz4: corrupt frame ({e.Message})", e);
        }
    }

    /// <summary>
    /// The length of the frame at the start of <paramref name="data"/>, found by walking its block headers
    /// (the decoder does not say how much it consumed); the decoder checks the contents.
    /// </summary>
    private static int FrameLength(ReadOnlySpan<byte> data, int at, out bool skippable)
    {
        if (data.Length < 8) throw Truncated(at);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(data);
        skippable = (magic & SkippableMagicMask) == SkippableMagic;
        long pos;
        if (skippable)
        {
            pos = 8L + BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        }
        else
        {
            if (magic != FrameMagic) throw new CompressionException($"lz4: no frame magic at byte {at}");
            byte flg = data[4];
            bool contentSize = (flg & 0x08) != 0, dictId = (flg & 0x01) != 0;
            bool blockChecksum = (flg & 0x10) != 0, contentChecksum = (flg & 0x04) != 0;
            pos = 4 + 2 + (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1; // magic, FLG+BD, options, header checksum
            while (true)
            {
                if (data.Length - pos < 4) throw Truncated(at);
                uint blockSize = BinaryPrimitives.ReadUInt32LittleEndian(data[(int)pos..]);
                pos += 4;
                if (blockSize == 0) break; // end mark
                pos += (blockSize & 0x7FFFFFFF) + (blockChecksum ? 4 : 0); // high bit: stored uncompressed
                if (pos > data.Length) throw Truncated(at);
            }
            if (contentChecksum) pos += 4;
        }
        if (pos > data.Length) throw Truncated(at);
        return (int)pos;
    }

    private static CompressionException Truncated(int at) => new($"lz4: truncated frame starting at byte {at}");
}
