using System.Buffers;
using System.Buffers.Binary;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Compression;

/// <summary>
/// Snappy as Kafka clients use it. The Java client writes snappy-java's "xerial" framing: an 8-byte
/// magic, two int32 versions, then [int32 big-endian compressed length][raw snappy block] chunks of
/// at most 32 KiB uncompressed each. librdkafka writes one raw block. Decoding accepts both;
/// encoding produces the xerial framing, which every client can read.
/// </summary>
public sealed class SnappyCodec : ICompressionCodec
{
    /// <summary>snappy-java's SnappyOutputStream default block size.</summary>
    public const int XerialBlockSize = 32 * 1024;
    public const int XerialHeaderSize = 16;
    internal static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
    private const int XerialVersion = 1;
    private const int XerialCompatibleVersion = 1;

    public CompressionCodec Codec => CompressionCodec.Snappy;

    public static bool IsXerialFramed(ReadOnlySpan<byte> data) =>
        data.Length >= XerialHeaderSize && data.StartsWith(XerialMagic);

    public void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        var header = destination.GetSpan(XerialHeaderSize);
        XerialMagic.CopyTo(header);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], XerialVersion);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], XerialCompatibleVersion);
        destination.Advance(XerialHeaderSize);

        for (int offset = 0; offset < source.Length; offset += XerialBlockSize)
        {
            var chunk = source.Slice(offset, Math.Min(XerialBlockSize, source.Length - offset));
            var dest = destination.GetSpan(4 + Snappier.Snappy.GetMaxCompressedLength(chunk.Length));
            int written = Snappier.Snappy.Compress(chunk, dest[4..]);
            BinaryPrimitives.WriteInt32BigEndian(dest, written);
            destination.Advance(4 + written);
        }
    }

    public void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        if (!IsXerialFramed(source))
        {
            DecodeBlock(source, destination);
            return;
        }

        int pos = XerialHeaderSize;
        while (pos < source.Length)
        {
            // snappy-java reads concatenated streams, each starting with its own header.
            if (IsXerialFramed(source[pos..]))
            {
                pos += XerialHeaderSize;
                continue;
            }
            if (source.Length - pos < 4)
                throw new CompressionException($"snappy: truncated xerial chunk length at {pos}");
            int length = BinaryPrimitives.ReadInt32BigEndian(source[pos..]);
            pos += 4;
            if (length < 0 || length > source.Length - pos)
                throw new CompressionException($"snappy: xerial chunk of {length} bytes at {pos - 4} exceeds the {source.Length - pos} bytes left");
            DecodeBlock(source.Slice(pos, length), destination);
            pos += length;
        }
    }

    /// <summary>
    /// Snappy's densest element is a 3-byte copy of 64 bytes, so no block can expand more than ~21.3x.
    /// Checked up front because the claimed length is reserved in the destination before decoding.
    /// </summary>
    private const int MaxExpansion = 22;

    private static void DecodeBlock(ReadOnlySpan<byte> block, IBufferWriter<byte> destination)
    {
        if (block.IsEmpty) throw new CompressionException("snappy: empty block");
        uint claimed = 0;
        int i = 0;
        for (int shift = 0; ; shift += 7, i++)
        {
            if (i == block.Length || i == 5) throw new CompressionException("snappy: bad uncompressed length varint");
            claimed |= (uint)(block[i] & 0x7F) << shift;
            if ((block[i] & 0x80) == 0) break;
        }
        if (claimed > (long)block.Length * MaxExpansion + 64)
            throw new CompressionException($"snappy: a {block.Length}-byte block cannot hold the {claimed} bytes it claims");

        try
        {
            var dest = destination.GetSpan(Math.Max(1, (int)claimed));
            int written = Snappier.Snappy.Decompress(block, dest);
            destination.Advance(written);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
        {
            throw new CompressionException($"snappy: corrupt block ({e.Message})", e);
        }
    }
}
