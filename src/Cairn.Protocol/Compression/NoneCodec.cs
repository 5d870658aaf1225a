using System.Buffers;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Compression;

/// <summary>Identity codec, so callers can treat every batch uniformly.</summary>
public sealed class NoneCodec : ICompressionCodec
{
    public static NoneCodec Instance { get; } = new();
    private NoneCodec() { }

    public CompressionCodec Codec => CompressionCodec.None;
    public void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination) => destination.Write(source);
    public void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination) => destination.Write(source);
}
