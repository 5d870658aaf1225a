// Frozen copy of the pre-managed-packages codec, kept only as the benchmark baseline (see ../README.md).
using System.Runtime.InteropServices;

using Cairn.Protocol.Compression;

namespace Cairn.Bench.Codecs.Old;

/// <summary>libzstd simple and streaming API (zstd.h, 1.4+ ABI).</summary>
internal static unsafe partial class ZstdNative
{
    public const string LibraryName = "libzstd.so.1";

    static ZstdNative() => NativeLibraryResolver.EnsureRegistered();

    [StructLayout(LayoutKind.Sequential)]
    public struct InBuffer
    {
        public byte* Src;
        public nuint Size;
        public nuint Pos;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct OutBuffer
    {
        public byte* Dst;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_getErrorName")]
    public static partial IntPtr GetErrorName(nuint code);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_compressBound")]
    public static partial nuint CompressBound(nuint srcSize);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_createCCtx")]
    public static partial IntPtr CreateCCtx();

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCCtx(IntPtr cctx);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_compressCCtx")]
    public static partial nuint CompressCCtx(IntPtr cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int compressionLevel);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_createDStream")]
    public static partial IntPtr CreateDStream();

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_freeDStream")]
    public static partial nuint FreeDStream(IntPtr dstream);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_initDStream")]
    public static partial nuint InitDStream(IntPtr dstream);

    [LibraryImport(LibraryName, EntryPoint = "ZSTD_decompressStream")]
    public static partial nuint DecompressStream(IntPtr dstream, OutBuffer* output, InBuffer* input);

    public static nuint Check(nuint code, string operation)
    {
        if (IsError(code) != 0)
            throw new CompressionException($"zstd: {operation} failed: {Marshal.PtrToStringUTF8(GetErrorName(code))}");
        return code;
    }
}

/// <summary>Owns a ZSTD_CCtx; reused per thread because creating one costs a few hundred KB of setup.</summary>
internal sealed class ZstdCompressionContext : SafeHandle
{
    private ZstdCompressionContext() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;

    public static ZstdCompressionContext Create()
    {
        var ctx = new ZstdCompressionContext();
        IntPtr raw = ZstdNative.CreateCCtx();
        if (raw == IntPtr.Zero) throw new OutOfMemoryException("ZSTD_createCCtx returned NULL");
        ctx.SetHandle(raw);
        return ctx;
    }

    protected override bool ReleaseHandle()
    {
        ZstdNative.FreeCCtx(handle);
        return true;
    }
}

/// <summary>Owns a ZSTD_DStream, reused per thread (re-initialised before each frame sequence).</summary>
internal sealed class ZstdDecompressionStream : SafeHandle
{
    private ZstdDecompressionStream() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;

    public static ZstdDecompressionStream Create()
    {
        var ctx = new ZstdDecompressionStream();
        IntPtr raw = ZstdNative.CreateDStream();
        if (raw == IntPtr.Zero) throw new OutOfMemoryException("ZSTD_createDStream returned NULL");
        ctx.SetHandle(raw);
        return ctx;
    }

    protected override bool ReleaseHandle()
    {
        ZstdNative.FreeDStream(handle);
        return true;
    }
}
