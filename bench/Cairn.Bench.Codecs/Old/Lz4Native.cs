// Frozen copy of the pre-managed-packages codec, kept only as the benchmark baseline (see ../README.md).
using System.Runtime.InteropServices;

using Cairn.Protocol.Compression;

namespace Cairn.Bench.Codecs.Old;

/// <summary>liblz4 frame API (lz4frame.h, 1.9.x ABI).</summary>
internal static unsafe partial class Lz4Native
{
    public const string LibraryName = "liblz4.so.1";
    /// <summary>LZ4F_VERSION, the API version passed to context creation.</summary>
    public const uint Version = 100;

    static Lz4Native() => NativeLibraryResolver.EnsureRegistered();

    public enum BlockSizeId { Default = 0, Max64KB = 4, Max256KB = 5, Max1MB = 6, Max4MB = 7 }
    public enum BlockMode { Linked = 0, Independent = 1 }

    [StructLayout(LayoutKind.Sequential)]
    public struct FrameInfo
    {
        public BlockSizeId BlockSizeId;
        public BlockMode BlockMode;
        public int ContentChecksumFlag;
        public int FrameType;
        public ulong ContentSize;
        public uint DictId;
        public int BlockChecksumFlag;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Preferences
    {
        public FrameInfo FrameInfo;
        public int CompressionLevel;
        public uint AutoFlush;
        public uint FavorDecSpeed;
        public uint Reserved0, Reserved1, Reserved2;
    }

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_getErrorName")]
    public static partial IntPtr GetErrorName(nuint code);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_compressFrameBound")]
    public static partial nuint CompressFrameBound(nuint srcSize, Preferences* preferences);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_compressFrame")]
    public static partial nuint CompressFrame(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, Preferences* preferences);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_createDecompressionContext")]
    public static partial nuint CreateDecompressionContext(IntPtr* context, uint version);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_freeDecompressionContext")]
    public static partial nuint FreeDecompressionContext(IntPtr context);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_resetDecompressionContext")]
    public static partial void ResetDecompressionContext(IntPtr context);

    [LibraryImport(LibraryName, EntryPoint = "LZ4F_decompress")]
    public static partial nuint Decompress(IntPtr context, byte* dst, nuint* dstSize, byte* src, nuint* srcSize, void* options);

    /// <summary>Throws with liblz4's own error name when <paramref name="code"/> is an error code.</summary>
    public static nuint Check(nuint code, string operation)
    {
        if (IsError(code) != 0)
            throw new CompressionException($"lz4: {operation} failed: {Marshal.PtrToStringUTF8(GetErrorName(code))}");
        return code;
    }
}

/// <summary>Owns an LZ4F decompression context; the finalizer frees it if a thread's cached one is dropped.</summary>
internal sealed class Lz4DecompressionContext : SafeHandle
{
    private Lz4DecompressionContext() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public static unsafe Lz4DecompressionContext Create()
    {
        var ctx = new Lz4DecompressionContext();
        IntPtr raw;
        Lz4Native.Check(Lz4Native.CreateDecompressionContext(&raw, Lz4Native.Version), "LZ4F_createDecompressionContext");
        ctx.SetHandle(raw);
        return ctx;
    }

    protected override bool ReleaseHandle()
    {
        Lz4Native.FreeDecompressionContext(handle);
        return true;
    }
}
