using System.Buffers;
using Cairn.Protocol.Records;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Cairn.Protocol.Compression;

/// <summary>
/// Zstandard through the managed ZstdSharp port of libzstd. Decompression streams, because producers
/// (the Java client's ZstdOutputStream among them) may omit the content size from the frame header.
/// </summary>
public sealed unsafe class ZstdCodec : ICompressionCodec
{
    // Contexts cost a few hundred KB of setup, so each thread keeps one per level / one decoder.
    [ThreadStatic] private static Dictionary<int, Compressor>? t_compressors;
    [ThreadStatic] private static ZstdDecompressionStream? t_dstream;
    /// <summary>ZSTD_DStreamOutSize(): one full block, the output size that lets the decoder flush in one go.</summary>
    private const int OutChunk = 128 * 1024;
    private readonly int _level;

    /// <param name="level">zstd level; 3 is libzstd's and the Java client's default.</param>
    public ZstdCodec(int level = 3)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 22);
        _level = level;
    }

    public CompressionCodec Codec => CompressionCodec.Zstd;

    public void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        int bound = Compressor.GetCompressBound(source.Length);
        if (bound <= 0) throw new CompressionException($"zstd: input of {source.Length} bytes is too large");
        var compressors = t_compressors ??= [];
        if (!compressors.TryGetValue(_level, out var compressor))
            compressors[_level] = compressor = new Compressor(_level);
        try
        {
            destination.Advance(compressor.Wrap(source, destination.GetSpan(bound)));
        }
        catch (ZstdException e)
        {
            throw new CompressionException($"zstd: compression failed: {e.Message}", e);
        }
    }

    public void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        var dstream = t_dstream ?? new ZstdDecompressionStream();
        t_dstream = null; // a stream in use is never shared (re-entrancy through a custom IBufferWriter)
        try
        {
            ZstdDecompressionStream.Check(Methods.ZSTD_initDStream(dstream.Handle), "ZSTD_initDStream");
            DecompressFrames(dstream, source, destination);
        }
        finally
        {
            // initDStream resets the session on the next use, so an error leaves nothing behind.
            t_dstream = dstream;
        }
    }

    private static void DecompressFrames(ZstdDecompressionStream dstream, ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        byte dummy = 0;
        fixed (byte* srcBase = source)
        {
            var input = new ZSTD_inBuffer_s { src = srcBase != null ? srcBase : &dummy, size = (nuint)source.Length };
            while (true)
            {
                var dest = destination.GetSpan(OutChunk);
                nuint ret;
                var output = new ZSTD_outBuffer_s { size = (nuint)dest.Length };
                fixed (byte* dst = dest)
                {
                    output.dst = dst;
                    ret = ZstdDecompressionStream.Check(Methods.ZSTD_decompressStream(dstream.Handle, &output, &input), "ZSTD_decompressStream");
                }
                destination.Advance((int)output.pos);

                bool inputDone = input.pos == input.size;
                // 0 means a frame is complete and flushed; further input would be another frame.
                if (ret == 0 && inputDone) return;
                if (inputDone && output.pos < output.size)
                    throw new CompressionException($"zstd: truncated frame ({source.Length} bytes, decoder expects more)");
            }
        }
    }
}

/// <summary>Owns a ZSTD_DStream, reused per thread (re-initialised before each frame sequence); the finalizer frees a dropped one.</summary>
internal sealed unsafe class ZstdDecompressionStream
{
    public ZSTD_DCtx_s* Handle { get; }

    public ZstdDecompressionStream()
    {
        Handle = Methods.ZSTD_createDStream();
        if (Handle == null) throw new OutOfMemoryException("ZSTD_createDStream returned NULL");
    }

    ~ZstdDecompressionStream() => Methods.ZSTD_freeDStream(Handle);

    /// <summary>Throws with zstd's own error name when <paramref name="code"/> is an error code.</summary>
    public static nuint Check(nuint code, string operation)
    {
        if (Methods.ZSTD_isError(code))
            throw new CompressionException($"zstd: {operation} failed: {Methods.ZSTD_getErrorName(code)}");
        return code;
    }
}
