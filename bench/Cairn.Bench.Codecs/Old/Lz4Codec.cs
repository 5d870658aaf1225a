// Frozen copy of the pre-managed-packages codec, kept only as the benchmark baseline (see ../README.md).
using System.Buffers;
using Cairn.Protocol.Records;

using Cairn.Protocol.Compression;

namespace Cairn.Bench.Codecs.Old;

/// <summary>
/// LZ4 frame format (not the raw block format) through the native liblz4, as Kafka v2 batches use.
/// Compression writes what the Java client writes: 64 KB independent blocks, no content size, no checksums.
/// </summary>
internal sealed unsafe class Lz4Codec : ICompressionCodec
{
    private const int DecompressChunk = 64 * 1024;

    [ThreadStatic] private static Lz4DecompressionContext? t_context;
    private readonly int _level;

    /// <param name="level">liblz4 level: 0 (or negative, for faster) uses the fast compressor, 3-12 LZ4HC.</param>
    public Lz4Codec(int level = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 12);
        _level = level;
    }

    public CompressionCodec Codec => CompressionCodec.Lz4;

    public void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        var prefs = new Lz4Native.Preferences
        {
            FrameInfo = new Lz4Native.FrameInfo
            {
                BlockSizeId = Lz4Native.BlockSizeId.Max64KB,
                BlockMode = Lz4Native.BlockMode.Independent,
            },
            CompressionLevel = _level,
        };
        nuint bound = Lz4Native.Check(Lz4Native.CompressFrameBound((nuint)source.Length, &prefs), "LZ4F_compressFrameBound");
        if (bound > int.MaxValue) throw new CompressionException($"lz4: input of {source.Length} bytes is too large");
        var dest = destination.GetSpan((int)bound);
        byte dummy = 0;
        fixed (byte* src = source)
        fixed (byte* dst = dest)
        {
            // liblz4 wants a valid pointer even for an empty input.
            byte* srcPtr = src != null ? src : &dummy;
            nuint written = Lz4Native.Check(
                Lz4Native.CompressFrame(dst, (nuint)dest.Length, srcPtr, (nuint)source.Length, &prefs), "LZ4F_compressFrame");
            destination.Advance((int)written);
        }
    }

    public void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        var context = t_context ?? Lz4DecompressionContext.Create();
        t_context = null; // a context in use is never shared (re-entrancy through a custom IBufferWriter)
        bool ok = false;
        try
        {
            IntPtr dctx = context.DangerousGetHandle();
            Lz4Native.ResetDecompressionContext(dctx);
            DecompressFrames(dctx, source, destination);
            ok = true;
        }
        finally
        {
            if (ok) t_context = context;
            else context.Dispose(); // after an error the context's state is undefined
        }
    }

    private static void DecompressFrames(IntPtr dctx, ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        byte dummy = 0;
        fixed (byte* srcBase = source)
        {
            byte* src = srcBase != null ? srcBase : &dummy;
            int pos = 0;
            while (true)
            {
                var dest = destination.GetSpan(DecompressChunk);
                nuint consumed = (nuint)(source.Length - pos);
                nuint produced = (nuint)dest.Length;
                nuint hint;
                fixed (byte* dst = dest)
                    hint = Lz4Native.Check(Lz4Native.Decompress(dctx, dst, &produced, src + pos, &consumed, null), "LZ4F_decompress");
                pos += (int)consumed;
                destination.Advance((int)produced);

                if (hint == 0)
                {
                    // A frame ended; Kafka batches hold one, but concatenated frames are valid LZ4.
                    if (pos == source.Length) return;
                    continue;
                }
                if (consumed == 0 && produced == 0)
                    throw new CompressionException(pos == source.Length
                        ? $"lz4: truncated frame ({source.Length} bytes, {hint} more expected)"
                        : $"lz4: decoder made no progress at byte {pos}");
            }
        }
    }
}
