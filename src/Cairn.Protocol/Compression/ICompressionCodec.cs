using System.Buffers;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Compression;

/// <summary>
/// Compresses or decompresses one whole blob: the records section of a record batch, which Kafka
/// compresses as a unit while the 61-byte header stays plain. Implementations are thread-safe.
/// </summary>
public interface ICompressionCodec
{
    CompressionCodec Codec { get; }

    /// <summary>Appends the compressed form of <paramref name="source"/> to <paramref name="destination"/>.</summary>
    void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination);

    /// <summary>
    /// Appends the decompressed form of <paramref name="source"/> to <paramref name="destination"/>.
    /// Throws <see cref="CompressionException"/> when the input is corrupt or truncated.
    /// </summary>
    void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination);
}
