using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Compression;

/// <summary>
/// gzip (RFC 1952) through System.IO.Compression. Its zlib checks each member's CRC-32, but GZipStream
/// treats running out of input mid-stream as a normal end, so decompression compares the trailer's size
/// field with what was decoded to catch truncation. That check assumes one gzip member, which is what
/// Kafka clients write (Java's GZIPOutputStream, librdkafka, Sarama).
/// </summary>
public sealed class GzipCodec : ICompressionCodec
{
    private const int ReadChunk = 16 * 1024;
    private const int MinimumGzipSize = 18; // 10-byte header + empty deflate data (>= 0 bytes) + 8-byte trailer

    /// <summary>A complete gzip member holding nothing: GZipStream writes no bytes at all for empty input.</summary>
    private static ReadOnlySpan<byte> EmptyMember =>
        [0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 0xFF, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];

    private readonly ZLibCompressionOptions _options;

    /// <param name="level">zlib level 0-9; 6 is zlib's and the Java client's default.</param>
    public GzipCodec(int level = 6)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(level, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 9);
        _options = new ZLibCompressionOptions { CompressionLevel = level };
    }

    public CompressionCodec Codec => CompressionCodec.Gzip;

    public void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        if (source.IsEmpty)
        {
            destination.Write(EmptyMember);
            return;
        }
        using var sink = new BufferWriterStream(destination);
        using (var gzip = new GZipStream(sink, _options, leaveOpen: true))
            gzip.Write(source);
    }

    public unsafe void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        if (source.Length < MinimumGzipSize)
            throw new CompressionException($"gzip: {source.Length} bytes cannot hold a gzip stream (at least {MinimumGzipSize})");

        long size = 0;
        fixed (byte* p = source)
        {
            // UnmanagedMemoryStream over the pinned span avoids copying the input into a managed stream.
            using var input = new UnmanagedMemoryStream(p, source.Length);
            using var gzip = new GZipStream(input, CompressionMode.Decompress);
            try
            {
                while (true)
                {
                    var span = destination.GetSpan(ReadChunk);
                    int n = gzip.Read(span);
                    if (n == 0) break;
                    size += n;
                    destination.Advance(n);
                }
            }
            catch (InvalidDataException e)
            {
                throw new CompressionException($"gzip: {e.Message}", e);
            }
        }

        // The trailer ends with the uncompressed size mod 2^32 (little-endian). After a truncation these
        // four bytes are compressed data, which matches the decoded size only by a 2^-32 accident.
        uint storedSize = BinaryPrimitives.ReadUInt32LittleEndian(source[^4..]);
        if (storedSize != (uint)size)
            throw new CompressionException(
                $"gzip: stream is truncated or not a single gzip member (trailer says {storedSize} bytes, decoded {size})");
    }
}
