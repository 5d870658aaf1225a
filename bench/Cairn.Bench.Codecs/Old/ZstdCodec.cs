// Frozen copy of the pre-managed-packages codec, kept only as the benchmark baseline (see ../README.md).
using System.Buffers;
using Cairn.Protocol.Records;

using Cairn.Protocol.Compression;

namespace Cairn.Bench.Codecs.Old;

/// <summary>
/// Zstandard through the native libzstd. Decompression streams, because producers (the Java client's
/// ZstdOutputStream among them) may omit the content size from the frame header.
/// </summary>
internal sealed unsafe class ZstdCodec : ICompressionCodec
{
    [ThreadStatic] private static ZstdCompressionContext? t_cctx;
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
        nuint bound = ZstdNative.CompressBound((nuint)source.Length);
        if (ZstdNative.IsError(bound) != 0 || bound > int.MaxValue)
            throw new CompressionException($"zstd: input of {source.Length} bytes is too large");
        var dest = destination.GetSpan((int)bound);

        var cctx = t_cctx ?? ZstdCompressionContext.Create();
        t_cctx = null;
        byte dummy = 0;
        try
        {
            fixed (byte* src = source)
            fixed (byte* dst = dest)
            {
                nuint written = ZstdNative.Check(ZstdNative.CompressCCtx(cctx.DangerousGetHandle(),
                    dst, (nuint)dest.Length, src != null ? src : &dummy, (nuint)source.Length, _level), "ZSTD_compressCCtx");
                destination.Advance((int)written);
            }
        }
        finally
        {
            // ZSTD_compressCCtx starts a fresh frame on every call, so the context is reusable even after an error.
            t_cctx = cctx;
        }
    }

    public void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        var dstream = t_dstream ?? ZstdDecompressionStream.Create();
        t_dstream = null;
        try
        {
            IntPtr ds = dstream.DangerousGetHandle();
            ZstdNative.Check(ZstdNative.InitDStream(ds), "ZSTD_initDStream");
            DecompressFrames(ds, source, destination);
        }
        finally
        {
            // initDStream resets the session on the next use, so an error leaves nothing behind.
            t_dstream = dstream;
        }
    }

    private static void DecompressFrames(IntPtr ds, ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        byte dummy = 0;
        fixed (byte* srcBase = source)
        {
            var input = new ZstdNative.InBuffer { Src = srcBase != null ? srcBase : &dummy, Size = (nuint)source.Length };
            while (true)
            {
                var dest = destination.GetSpan(OutChunk);
                nuint ret;
                var output = new ZstdNative.OutBuffer { Size = (nuint)dest.Length };
                fixed (byte* dst = dest)
                {
                    output.Dst = dst;
                    ret = ZstdNative.Check(ZstdNative.DecompressStream(ds, &output, &input), "ZSTD_decompressStream");
                }
                destination.Advance((int)output.Pos);

                bool inputDone = input.Pos == input.Size;
                // 0 means a frame is complete and flushed; further input would be another frame.
                if (ret == 0 && inputDone) return;
                if (inputDone && output.Pos < output.Size)
                    throw new CompressionException($"zstd: truncated frame ({source.Length} bytes, decoder expects more)");
            }
        }
    }
}
